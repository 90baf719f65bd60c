"""Run the Python blocks of one docs page, in order, as one program: ``python _run_page.py PAGE``.

Blocks share one ``__main__`` namespace, like the cells of a notebook, so a
block may use what an earlier block on the page defined; task functions
defined in a block are importable as ``__main__:name``, as in a script. A
block with a top-level ``await`` runs inside ``trio.run``, as it would in
trio's REPL (``python -m trio``). A block marked as a file is saved under
its name in the working directory, which is on ``sys.path``. Blocks marked
not runnable and blocks that include files are skipped. Exits non-zero naming the block that failed.
"""

from __future__ import annotations

import ast
import inspect
import sys
import traceback
import types
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _blocks import read_blocks


def run_page(page: Path) -> int:
    main = types.ModuleType("__main__")
    main.__file__ = str(page)
    sys.modules["__main__"] = main
    namespace: dict[str, Any] = main.__dict__
    sys.path.insert(0, str(Path.cwd()))
    ran = 0
    for block in read_blocks(page):
        if block.file is not None:
            Path(block.file).parent.mkdir(parents=True, exist_ok=True)
            Path(block.file).write_text(block.code)
            continue
        if not block.is_python or block.not_runnable is not None or block.includes:
            continue
        try:
            code = compile(
                block.code, f"{page}:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            )
            if code.co_flags & inspect.CO_COROUTINE:

                async def cell(code: types.CodeType = code) -> None:
                    await eval(code, namespace)

                trio.run(cell)
            else:
                exec(code, namespace)
        except BaseException:
            print(f"\n{block.where()}: this block failed:", file=sys.stderr)
            traceback.print_exc()
            return 1
        ran += 1
    print(f"\n[{page}: {ran} block(s) ran]")
    return 0


if __name__ == "__main__":
    sys.exit(run_page(Path(sys.argv[1])))
