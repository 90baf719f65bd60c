"""Events as journal records: cattrs-unstructured dicts, encoded as JSON by orjson.

A record is a JSON object tagged by ``"e"`` (``put``, ``claim``, ``out``, ...).
Fields at their default value are left out, which keeps a pending no-op
task's record near 150 bytes.

Journals written by 0.1 hold ``done`` and ``fail`` records for outcomes; they
are read as the :class:`~omniq_trio.store.Outcome` they describe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.preconf.orjson import make_converter

from ...models import Progress, Task, TaskError, TaskResult, TaskStatus
from .._base import Outcome, OutcomeKind
from .._events import (
    Cancelled,
    Claimed,
    Event,
    Expired,
    ProgressSet,
    Purged,
    Put,
    QueueLimited,
    QueuePaused,
    Released,
    Renewed,
    Retried,
    ScheduleFired,
    SchedulesRecorded,
    WorkerGone,
    WorkerSeen,
)
from ._frames import ref_of

__all__ = ["decode_batch", "decode_event", "decode_lines", "encode_event"]

_TAGS: Final[dict[type[Any], str]] = {
    Put: "put",
    Claimed: "claim",
    Renewed: "renew",
    Outcome: "out",
    Released: "release",
    Expired: "expire",
    Cancelled: "cancel",
    Retried: "retry",
    Purged: "purge",
    ProgressSet: "progress",
    QueuePaused: "qpause",
    QueueLimited: "qlimit",
    ScheduleFired: "fired",
    SchedulesRecorded: "schedules",
    WorkerSeen: "wseen",
    WorkerGone: "wgone",
}


_KINDS: Final = {kind.value: kind for kind in OutcomeKind}

#: Every field at its default, for _structure_task to copy from.
_TEMPLATE: Final = Task(id="", func="")
_STATUS: Final = {status.value: status for status in TaskStatus}


def _structure_task(data: dict[str, Any], _: Any) -> Task:
    """A task from its record: the replay's hottest path (a journal is mostly tasks).

    Copies a template's instance dict and overwrites what the record holds,
    as the index does (models.Task): the record was written from a valid
    task, so ``__init__`` would only cost time. (Copying from an instance,
    rather than filling an empty dict, keeps CPython's shared key table:
    ~280 bytes a task instead of ~460.)
    """
    if "id" not in data or "func" not in data:
        raise KeyError("a task record needs an id and a func")
    task = object.__new__(Task)
    state = task.__dict__
    state.update(_TEMPLATE.__dict__)
    state.update(data)
    if (status := data.get("status")) is not None:
        state["status"] = _STATUS[status]
    if (args := data.get("args")) is not None:
        state["args"] = tuple(args)
    if "kwargs" not in data:
        state["kwargs"] = {}
    if "headers" not in data:
        state["headers"] = {}
    if (error := data.get("error")) is not None:
        state["error"] = TaskError(**error)
    if (progress := data.get("progress")) is not None:
        state["progress"] = Progress(**progress)
    return task


# The three events that make up nearly all of a journal, decoded directly.
def _structure_put(data: dict[str, Any], _: Any) -> Put:
    result = data.get("result")
    return Put(
        _structure_task(data["task"], None),
        None if result is None else _converter.structure(result, TaskResult),
        data.get("order"),
        data.get("queued"),
    )


def _structure_expired(data: dict[str, Any], _: Any) -> Expired:
    failed = data.get("failed")
    return Expired(
        tuple(data["ids"]),
        data["at"],
        None if failed is None else {k: TaskError(**v) for k, v in failed.items()},
    )


def _structure_claimed(data: dict[str, Any], _: Any) -> Claimed:
    return Claimed(tuple(data["ids"]), data["worker_id"], data["lease_until"], data["at"])


def _structure_outcome(data: dict[str, Any], _: Any) -> Outcome:
    error = data.get("error")
    return Outcome(
        _KINDS[data["kind"]],
        data["task_id"],
        data["worker_id"],
        data["at"],
        data.get("value"),
        None if error is None else TaskError(**error),
        data.get("eta"),
    )


def _legacy_done(data: dict[str, Any], _: Any) -> Outcome:
    """A 0.1 ``done`` record: a run returned."""
    task_id, worker_id, at, value = data["task_id"], data["worker_id"], data["at"], data["value"]
    next_eta = data.get("next_eta")
    if next_eta is None:
        return Outcome.success(task_id, worker_id, at, value)
    return Outcome.next_run(task_id, worker_id, at, next_eta, value=value)


def _legacy_fail(data: dict[str, Any], _: Any) -> Outcome:
    """A 0.1 ``fail`` record: a run raised."""
    task_id, worker_id, at = data["task_id"], data["worker_id"], data["at"]
    error = TaskError(**data["error"])
    if (retry_at := data.get("retry_at")) is not None:
        return Outcome.retry(task_id, worker_id, at, error, retry_at)
    if (next_eta := data.get("next_eta")) is not None:
        return Outcome.next_run(task_id, worker_id, at, next_eta, error=error)
    return Outcome.failure(task_id, worker_id, at, error)


def _make_converter() -> cattrs.Converter:
    converter = make_converter(detailed_validation=False)
    for cls in (Task, TaskResult, Outcome, Put, Expired):
        converter.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True)
        )
    converter.register_structure_hook(
        TaskResult, make_dict_structure_fn(TaskResult, converter, _cattrs_detailed_validation=False)
    )
    converter.register_structure_hook(Task, _structure_task)
    converter.register_structure_hook(Put, _structure_put)
    converter.register_structure_hook(Claimed, _structure_claimed)
    converter.register_structure_hook(Outcome, _structure_outcome)
    converter.register_structure_hook(Expired, _structure_expired)
    # arguments, kwargs and results are already plain JSON values: pass them through
    converter.register_structure_hook_func(lambda t: t is Any, lambda value, _: value)
    converter.register_structure_hook_func(
        lambda t: t in (tuple[Any, ...], tuple[str, ...]), lambda value, _: tuple(value)
    )
    converter.register_structure_hook_func(lambda t: t == Mapping[str, Any], lambda value, _: value)
    return converter


_converter: Final = _make_converter()
_unstructure: Final[dict[type[Any], Callable[[Any], dict[str, Any]]]] = {
    cls: _converter.get_unstructure_hook(cls) for cls in _TAGS
}


#: tag -> (structure hook, event class); hooks are called as hook(data, cls)
_structure: Final[dict[str, tuple[Callable[[Any, Any], Event], type[Any]]]] = {
    tag: (_converter.get_structure_hook(cls), cls) for cls, tag in _TAGS.items()
}
_structure["done"] = (_legacy_done, Outcome)
_structure["fail"] = (_legacy_fail, Outcome)


def encode_event(event: Event) -> bytes:
    """One event as a JSON object."""
    data = _unstructure[type(event)](event)
    data["e"] = _TAGS[type(event)]
    return orjson.dumps(data)


def decode_event(record: bytes) -> Event:
    """One event from its JSON object."""
    data = orjson.loads(record)
    hook, cls = _structure[data.pop("e")]
    return hook(data, cls)


def decode_lines(offset: int, payload: bytes) -> tuple[list[Event], list[int]]:
    """The events of one format-2 frame payload at file ``offset``, and their refs."""
    events: list[Event] = []
    refs: list[int] = []
    structure = _structure
    if not payload:
        return events, refs
    for line in payload.split(b"\n"):
        data = orjson.loads(line)
        hook, cls = structure[data.pop("e")]
        events.append(hook(data, cls))
        refs.append(ref_of(offset, len(line)))
        offset += len(line) + 1
    return events, refs


def decode_batch(payloads: list[bytes]) -> list[Event]:
    """The events of one format-1 batch, from its frames' JSON arrays."""
    events: list[Event] = []
    structure = _structure
    for payload in payloads:
        for data in orjson.loads(payload):
            hook, cls = structure[data.pop("e")]
            events.append(hook(data, cls))
    return events
