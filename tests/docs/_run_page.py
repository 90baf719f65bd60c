"""Run the Python blocks of one page, in order, as one program.

``python _run_page.py PAGE [--postgres DSN SCHEMA]``

Blocks share one ``__main__`` namespace, like the cells of a notebook, so a
block may use what an earlier block on the page defined; task functions
defined in a block are importable as ``__main__:name``, as in a script. A
block with a top-level ``await`` runs inside ``trio.run``, as it would in
trio's REPL (``python -m trio``). A block marked as a file is saved under
its name in the working directory, which is on ``sys.path``. Blocks marked
not runnable and blocks that include files are skipped.

Blocks that require PostgreSQL run only with ``--postgres``: from the first
of them on, every ``Settings(backend="postgres", ...)`` made in this process
uses ``DSN`` and ``SCHEMA`` instead of what the page shows (the caller drops
the schema afterwards). A block marked ``send: SIGINT after S s`` gets that
signal ``S`` seconds after it starts listening for it.

Exits non-zero naming the block that failed.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from tests.docs._blocks import Block, read_blocks
else:  # run as a script, from the directory of the page's program
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _blocks import Block, read_blocks

#: Longest a block marked ``send:`` may take to start listening for its signal.
LISTEN_TIMEOUT = 60.0


def redirect_postgres(dsn: str, schema: str) -> None:
    """Point every PostgreSQL ``Settings`` made from now on at ``dsn`` and ``schema``."""
    from omniq_trio.config import Settings

    init = Settings.__init__

    def __init__(self: Settings, **fields: Any) -> None:
        if fields.get("backend") == "postgres":
            fields.update(dsn=dsn, postgres_schema=schema)
        init(self, **fields)

    Settings.__init__ = __init__  # type: ignore[method-assign]


def _listening(signum: int) -> bool:
    """Whether trio code listens for ``signum`` (``trio.open_signal_receiver``)."""
    handler = signal.getsignal(signum)
    return getattr(handler, "__qualname__", "").startswith("open_signal_receiver.")


@contextmanager
def signal_after(name: str, seconds: float) -> Iterator[None]:
    """Send signal ``name`` to this process ``seconds`` after the code inside listens for it."""
    signum = signal.Signals[name]
    done = threading.Event()

    def send() -> None:
        deadline = time.monotonic() + LISTEN_TIMEOUT
        listening_since: float | None = None
        while not done.wait(0.01):
            now = time.monotonic()
            if not _listening(signum):
                # a signal nobody listens for would be a KeyboardInterrupt
                listening_since = None
                if now > deadline:
                    print(f"the block never listened for {name}", file=sys.stderr, flush=True)
                    os._exit(3)
            elif listening_since is None:
                listening_since = now
            elif now - listening_since >= seconds:
                os.kill(os.getpid(), signum)
                return

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        done.set()
        sender.join()


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    code = compile(
        block.code, f"{block.path}:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    if code.co_flags & inspect.CO_COROUTINE:

        async def cell(code: types.CodeType = code) -> None:
            await eval(code, namespace)

        trio.run(cell)
    else:
        exec(code, namespace)


def run_page(page: Path, postgres: tuple[str, str] | None) -> int:
    main = types.ModuleType("__main__")
    main.__file__ = str(page)
    sys.modules["__main__"] = main
    namespace: dict[str, Any] = main.__dict__
    sys.path.insert(0, str(Path.cwd()))
    ran = skipped = 0
    redirected = False
    for block in read_blocks(page):
        if block.file is not None:
            Path(block.file).parent.mkdir(parents=True, exist_ok=True)
            Path(block.file).write_text(block.code)
            continue
        if not block.is_python or block.not_runnable is not None or block.includes:
            continue
        if block.requires == "postgres":
            if postgres is None:
                skipped += 1
                continue
            if not redirected:
                redirect_postgres(*postgres)
                redirected = True
        try:
            if block.send is None:
                run_block(block, namespace)
            else:
                with signal_after(*block.send):
                    run_block(block, namespace)
        except BaseException:
            print(f"\n{block.where()}: this block failed:", file=sys.stderr)
            traceback.print_exc()
            return 1
        ran += 1
    print(f"\n[{page}: {ran} block(s) ran, {skipped} skipped for want of PostgreSQL]")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("page", type=Path)
    parser.add_argument("--postgres", nargs=2, metavar=("DSN", "SCHEMA"))
    args = parser.parse_args()
    return run_page(args.page, tuple(args.postgres) if args.postgres else None)


if __name__ == "__main__":
    sys.exit(main())
