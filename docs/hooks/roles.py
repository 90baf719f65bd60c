"""An mkdocs hook: Sphinx roles left in docstrings (``:class:`~a.B```) render as plain code.

Docstrings use Sphinx's cross-reference roles, which mkdocstrings does not
read; without this, pages would show ``:class:`` before every such name.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc|obj):<code>(~?)([\w.]+)</code>")


def _plain(match: re.Match[str]) -> str:
    short, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if short else name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(_plain, html)
