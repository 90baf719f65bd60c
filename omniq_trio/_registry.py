"""The functions this process's workers may run: the task registry.

A worker runs a task only if its function is registered here, by one of:

* the :func:`task` decorator (the function registers when its module is imported);
* ``enqueue``/``enqueue_many`` given the function object in this process
  (so code that enqueues and works in one process needs nothing more);
* being defined at module level in a module of the pool's ``Settings.imports``,
  which every pool imports at start (:func:`import_task_modules`).

The first two hold for every pool of the process; the third for the pools
that import the module.

"Defined in" is exact: the object named ``module:name`` must have that
``__module__`` and ``__qualname__``, and dotted names are never followed, so
``app.tasks:os.system`` is refused even though ``app.tasks`` imports ``os``.
Nothing else is imported: a task naming anything else fails with
:class:`~omniq_trio.errors.UnregisteredTaskError`, unless the pool runs with
``Settings.allow_unregistered_tasks``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final, TypeVar, overload

import attrs

from ._call import Call, Seconds
from ._functions import func_path, resolve_func
from ._validate import check_int, check_queue_name, check_seconds
from .errors import TaskModuleImportError, TaskOptionError, UnregisteredTaskError

__all__ = [
    "TaskDefaults",
    "import_task_modules",
    "prepare_call",
    "register",
    "resolve_task",
    "task",
]

F = TypeVar("F", bound=Callable[..., Any])

# The registry is per process, as imports are: module globals, written only by
# registration (a dict assignment, atomic under the GIL, so threads may register).
_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {}
_DEFAULTS: Final[dict[str, TaskDefaults]] = {}


@attrs.frozen(kw_only=True)
class TaskDefaults:
    """Options ``@omniq_trio.task(...)`` gives calls of a function that leave them unset."""

    max_retries: int | None = None
    timeout: float | None = None
    retry_on_timeout: bool | None = None
    priority: int | None = None
    queue: str | None = None
    max_lost_runs: int | None = None

    def apply(self, call: Call) -> Call:
        """``call`` with each option it leaves ``None`` taken from these defaults."""
        changes = {
            name: value
            for name, value in attrs.asdict(self, recurse=False).items()
            if value is not None and getattr(call, name) is None
        }
        return attrs.evolve(call, **changes) if changes else call


def register(func: Callable[..., Any]) -> str:
    """Register ``func`` under its ``"module:qualname"`` path; returns the path."""
    path = func_path(func)
    if _FUNCTIONS.get(path) is not func:
        _FUNCTIONS[path] = func
    return path


@overload
def task(func: F, /) -> F: ...


@overload
def task(
    *,
    max_retries: int | None = None,
    timeout: Seconds | None = None,
    retry_on_timeout: bool | None = None,
    priority: int | None = None,
    queue: str | None = None,
    max_lost_runs: int | None = None,
) -> Callable[[F], F]: ...


def task(
    func: F | None = None,
    /,
    *,
    max_retries: int | None = None,
    timeout: Seconds | None = None,
    retry_on_timeout: bool | None = None,
    priority: int | None = None,
    queue: str | None = None,
    max_lost_runs: int | None = None,
) -> F | Callable[[F], F]:
    """Register a module-level function as a task this process's workers may run.

    ``@omniq_trio.task`` or ``@omniq_trio.task(max_retries=3, timeout=60,
    queue="emails")``; returns the function unchanged. The options are
    defaults for calls that pass the function object and leave them unset; a
    producer that enqueues by path (``"app.tasks:send_email"``) does not see
    them. A worker knows the function once it imports its module
    (``Settings.imports``).
    """
    error = TaskOptionError
    defaults = TaskDefaults(
        max_retries=None
        if max_retries is None
        else check_int(max_retries, name="max_retries", error=error, minimum=0),
        timeout=None
        if timeout is None
        else check_seconds(timeout, name="timeout", error=error, allow_zero=False),
        retry_on_timeout=None if retry_on_timeout is None else _bool(retry_on_timeout),
        priority=None if priority is None else check_int(priority, name="priority", error=error),
        queue=None if queue is None else check_queue_name(queue, error=error),
        max_lost_runs=None
        if max_lost_runs is None
        else check_int(max_lost_runs, name="max_lost_runs", error=error, minimum=0),
    )

    def register_task(function: F) -> F:
        path = register(function)
        if defaults == TaskDefaults():
            _DEFAULTS.pop(path, None)
        else:
            _DEFAULTS[path] = defaults
        return function

    return register_task if func is None else register_task(func)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TaskOptionError(f"retry_on_timeout must be True or False, got {value!r}")
    return value


def prepare_call(call: Call) -> Call:
    """Register the function object ``call`` names (a path is left alone) and apply the
    defaults its ``@task`` decorator gave."""
    if isinstance(call.func, str):
        return call
    path = register(call.func)
    defaults = _DEFAULTS.get(path)
    return call if defaults is None else defaults.apply(call)


def import_task_modules(modules: Iterable[str]) -> None:
    """Import ``modules`` (``Settings.imports``) and register the functions they define.

    Every worker pool calls this at start. Raises
    :class:`~omniq_trio.errors.TaskModuleImportError` for a module that fails
    to import.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # an import runs the module's code: any error
            raise TaskModuleImportError(module, exc) from exc


def resolve_task(
    path: str, *, task_modules: Collection[str] = (), allow_unregistered: bool = False
) -> Callable[..., Any]:
    """The function ``path`` names, if it is registered or defined at module level in
    one of ``task_modules`` (which :func:`import_task_modules` imported).

    Never imports anything, unless ``allow_unregistered``. Raises
    :class:`~omniq_trio.errors.UnregisteredTaskError`.
    """
    func = _FUNCTIONS.get(path)
    if func is not None:
        return func
    module_name, _, name = path.partition(":")
    module = sys.modules.get(module_name) if module_name in task_modules else None
    found = vars(module).get(name) if module is not None and name.isidentifier() else None
    if (
        callable(found)
        and getattr(found, "__module__", None) == module_name
        and getattr(found, "__qualname__", None) == name
    ):
        resolved: Callable[..., Any] = found
        return resolved
    if allow_unregistered:
        return resolve_func(path)
    raise UnregisteredTaskError(path, _refusal(module_name, name, found, task_modules))


def _refusal(module_name: str, name: str, found: object, task_modules: Collection[str]) -> str:
    """Why the function a task names is not registered, in words."""
    if module_name not in task_modules:
        imported = ", ".join(task_modules) or "none"
        return f"not registered in this worker, whose task modules are: {imported}"
    if not name.isidentifier():
        return f"{name!r} is a dotted name; only functions defined in {module_name!r} run"
    if found is None:
        return f"module {module_name!r} defines no {name!r}"
    where = f"{getattr(found, '__module__', '?')}.{getattr(found, '__qualname__', '?')}"
    if callable(found):
        return f"{module_name}.{name} is {where}, defined in another module"
    return f"{module_name}.{name} is a {type(found).__name__}, not a function"
