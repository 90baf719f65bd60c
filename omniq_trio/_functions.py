"""Task functions by name: ``"module:qualname"`` paths, both ways."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from typing import Any, Final

from .errors import FunctionImportError

__all__ = ["func_path", "resolve_func"]

_PATH: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_resolved: dict[str, Callable[..., Any]] = {}


def func_path(func: Callable[..., Any] | str) -> str:
    """The ``"module:qualname"`` a worker imports to run ``func``.

    Raises :class:`FunctionImportError` for callables a worker could not import
    (lambdas, functions defined inside other functions) and malformed paths.
    """
    if isinstance(func, str):
        if not _PATH.match(func):
            raise FunctionImportError(
                f"{func!r} is not a task path; write 'package.module:function' "
                "(or 'module:Class.method')"
            )
        return func
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not callable(func) or not module or not qualname:
        raise FunctionImportError(
            f"{func!r} is not a module-level function; "
            "pass a function or a 'module:qualname' string"
        )
    if "<" in qualname:  # <lambda>, <locals>
        raise FunctionImportError(
            f"{module}.{qualname} cannot be imported by a worker; define it at module level"
        )
    if module == "__main__":
        # a script run with `python -m pkg.mod` can be imported by its real name
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name
    return f"{module}:{qualname}"


def resolve_func(path: str) -> Callable[..., Any]:
    """Import the callable named by ``path``, following dotted names; raises
    :class:`FunctionImportError`.

    Workers resolve tasks through the registry (``_registry.resolve_task``),
    which calls this only under ``Settings.allow_unregistered_tasks``.
    """
    cached = _resolved.get(path)
    if cached is not None:
        return cached
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise FunctionImportError(f"{path!r} is not a 'module:qualname' task path")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import runs arbitrary code; any error means "not importable"
        raise FunctionImportError(
            f"cannot import module {module_name!r} for task {path!r}: {exc}"
        ) from exc
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise FunctionImportError(
                f"module {module_name!r} has no attribute {qualname!r} (task {path!r})"
            ) from None
    if not callable(target):
        raise FunctionImportError(f"task {path!r} names a {type(target).__name__}, not a callable")
    resolved: Callable[..., Any] = target
    _resolved[path] = resolved
    return resolved
