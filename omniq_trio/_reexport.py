"""Objects re-exported from private modules report their public path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def publish(namespace: dict[str, Any], names: Iterable[str]) -> None:
    """Set ``__module__`` of ``names`` defined in private modules below the
    package whose ``namespace`` this is, to that package (as trio does)."""
    package = namespace["__name__"]
    for name in names:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith(package + "._"):
            obj.__module__ = package
