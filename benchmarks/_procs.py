"""The benchmark processes and how they talk: lines on stdout, ``go`` on stdin.

Every role process prints ``ready`` once it is set up (store open, journal
replayed), waits for ``go`` where the start must be simultaneous, does its
work and prints ``result {json}``. The conductor waits on those lines, never
on a guessed sleep.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
#: Seconds a role may take to say its next line before the run is abandoned.
LINE_TIMEOUT: Final = 600.0


# ------------------------------------------------------------ in the role process


def say(word: str, payload: Any = None) -> None:
    """Tell the conductor something: ``ready``, or ``result`` with a JSON payload."""
    line = word if payload is None else f"{word} {json.dumps(payload)}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_go() -> None:
    """Block until the conductor says ``go`` (call from a thread inside trio)."""
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"expected 'go' from the conductor, got {line!r}")


# -------------------------------------------------------------- in the conductor


class Role:
    """One role process, started by the conductor."""

    def __init__(self, module: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        full_env = {**os.environ, **env}
        full_env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{full_env.get('PYTHONPATH', '')}"
        self.name = f"{module.rsplit('.', 1)[-1]} {' '.join(args[:1])}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self._pending = b""  # read but not yet a whole line

    def expect(self, word: str) -> Any:
        """Wait for the line starting with ``word``; its JSON payload, if any."""
        deadline = time.monotonic() + LINE_TIMEOUT
        while True:
            line = self._line(deadline)
            head, _, rest = line.strip().partition(" ")
            if head == word:
                return json.loads(rest) if rest else None

    def _line(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise TimeoutError(f"{self.name}: nothing said within {LINE_TIMEOUT}s")
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self.proc.wait()
                raise RuntimeError(f"{self.name} exited ({code}) before saying what was expected")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop it (workers stop gracefully on SIGINT) and wait for it to exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.close()

    def close(self) -> None:
        """Wait for it to exit by itself (killed if it has not within a minute).

        Its stdin is closed first: a role still waiting for ``go`` gives up."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
