"""The fenced code blocks of a Markdown page, and the markers that say not to run them.

A block is marked not runnable by an HTML comment on the line before it
(blank lines allowed in between), which readers of the site never see::

    <!-- not-runnable: needs the CLI/PostgreSQL branch -->
    ```python
    ...
    ```

A block marked ``<!-- file: tasks.py -->`` is the content of a file the page
asks the reader to save: it is written to that name in the working directory
(importable from later blocks) rather than run.

A block whose only content is ``--8<--`` lines includes files (pymdownx
snippets): the included files are run where they live, by their own tests.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Final

import attrs

_FENCE: Final = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<info>[^`]*)$")
_MARKER: Final = re.compile(r"^\s*<!--\s*not-runnable:(?P<reason>.*?)-->\s*$")
_FILE: Final = re.compile(r"^\s*<!--\s*file:\s*(?P<name>[\w./-]+)\s*-->\s*$")
_REQUIRES: Final = re.compile(r"^\s*<!--\s*requires:\s*(?P<what>[\w-]+)\s*-->\s*$")
_SEND: Final = re.compile(
    r"^\s*<!--\s*send:\s*(?P<signal>SIG[A-Z]+)\s+after\s+(?P<seconds>[\d.]+)\s*s\s*-->\s*$"
)
#: what a block may require, and what provides it
REQUIREMENTS: Final = {"postgres": "OMNIQ_TEST_POSTGRES_DSN"}
_SNIPPET: Final = re.compile(r'^\s*-{2}8<-{2}\s+"(?P<path>[^"]+)"\s*$')


@attrs.frozen
class Block:
    """One fenced block of a page."""

    path: Path
    #: 1-based line of the opening fence
    line: int
    #: the info string's first word, lower case ("python", "sh", "" ...)
    lang: str
    code: str
    #: why it is not run (``None``: it is run, if it is Python)
    not_runnable: str | None = None
    #: the file name the block is saved as, instead of being run
    file: str | None = None
    #: what the block needs to run (a key of :data:`REQUIREMENTS`)
    requires: str | None = None
    #: the signal that stops the block, and how long after it listens for it
    send: tuple[str, float] | None = None

    @property
    def is_python(self) -> bool:
        return self.lang in ("python", "py", "python3")

    @property
    def includes(self) -> list[str]:
        """The files a snippet-only block includes (``path:section`` kept as given)."""
        lines = [line for line in self.code.splitlines() if line.strip()]
        matches = [_SNIPPET.match(line) for line in lines]
        if lines and all(matches):
            return [m["path"] for m in matches if m]
        return []

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of the page at ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    marker: str | None = None
    file: str | None = None
    requires: str | None = None
    send: tuple[str, float] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        pending = (marker, file, requires, send) != (None, None, None, None)
        if found := _MARKER.match(line):
            marker = found["reason"].strip()
            if not marker:
                raise ValueError(f"{path}:{i + 1}: a not-runnable marker needs a reason")
            i += 1
            continue
        if found := _FILE.match(line):
            file = found["name"]
            i += 1
            continue
        if found := _REQUIRES.match(line):
            requires = found["what"]
            if requires not in REQUIREMENTS:
                raise ValueError(f"{path}:{i + 1}: unknown requirement {requires!r}")
            i += 1
            continue
        if found := _SEND.match(line):
            send = (found["signal"], float(found["seconds"]))
            i += 1
            continue
        opening = _FENCE.match(line)
        if opening is None:
            if line.strip() and pending:
                raise ValueError(f"{path}:{i}: a marker is not followed by a block")
            i += 1
            continue
        fence = opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j])
            j += 1
        if j == len(lines):
            raise ValueError(f"{path}:{i + 1}: code block is never closed")
        info = opening["info"].strip().split()
        blocks.append(
            Block(
                path=path,
                line=i + 1,
                lang=info[0].lower().lstrip(".{") if info else "",
                code=textwrap.dedent("\n".join(body)) + "\n",
                not_runnable=marker,
                file=file,
                requires=requires,
                send=send,
            )
        )
        marker = file = requires = None
        send = None
        i = j + 1
    if (marker, file, requires, send) != (None, None, None, None):
        raise ValueError(f"{path}: a marker at the end of the page marks nothing")
    return blocks
