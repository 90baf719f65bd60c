"""A module no worker of the security tests imports: its functions are refused by path.

Importing it at all writes the file named by ``SECURITY_TEST_IMPORT_MARKER``
(when set), so a test can tell that a worker never imported it.
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKER = os.environ.get("SECURITY_TEST_IMPORT_MARKER")
if _MARKER:
    Path(_MARKER).write_text("imported")


def write_file(path: str, text: str = "ran") -> str:
    """Write ``text`` to ``path``: the file says the task ran."""
    Path(path).write_text(text)
    return text
