"""Events as journal records: cattrs-unstructured dicts, encoded as JSON by orjson.

A record is a JSON object tagged by ``"e"`` (``put``, ``claim``, ...). Fields
at their default value are left out of tasks, which keeps a pending no-op
task's record near 150 bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.preconf.orjson import make_converter

from ...models import Task, TaskResult
from .._events import (
    Cancelled,
    Claimed,
    Completed,
    Event,
    Failed,
    Purged,
    Put,
    Released,
    Renewed,
    Retried,
)

__all__ = ["decode_batch", "encode_event"]

_TAGS: Final[dict[type[Any], str]] = {
    Put: "put",
    Claimed: "claim",
    Renewed: "renew",
    Completed: "done",
    Failed: "fail",
    Released: "release",
    Cancelled: "cancel",
    Retried: "retry",
    Purged: "purge",
}


def _make_converter() -> cattrs.Converter:
    converter = make_converter(detailed_validation=False)
    for cls in (Task, TaskResult):
        converter.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True)
        )
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_detailed_validation=False)
        )
    # arguments, kwargs and results are already plain JSON values: pass them through
    converter.register_structure_hook_func(lambda t: t is Any, lambda value, _: value)
    converter.register_structure_hook_func(
        lambda t: t == tuple[Any, ...], lambda value, _: tuple(value)
    )
    converter.register_structure_hook_func(lambda t: t == Mapping[str, Any], lambda value, _: value)
    return converter


_converter: Final = _make_converter()
_unstructure: Final[dict[type[Any], Callable[[Any], dict[str, Any]]]] = {
    cls: _converter.get_unstructure_hook(cls) for cls in _TAGS
}


def _structure_fn(cls: type[Any]) -> Callable[[Any], Event]:
    hook = _converter.get_structure_hook(cls)

    def structure(data: Any) -> Event:
        event: Event = hook(data, cls)
        return event

    return structure


_structure: Final = {tag: _structure_fn(cls) for cls, tag in _TAGS.items()}


def encode_event(event: Event) -> bytes:
    """One event as a JSON object."""
    data = _unstructure[type(event)](event)
    data["e"] = _TAGS[type(event)]
    return orjson.dumps(data)


def decode_batch(payloads: list[bytes]) -> list[Event]:
    """The events of one batch, from its frames' JSON arrays."""
    events: list[Event] = []
    for payload in payloads:
        for data in orjson.loads(payload):
            events.append(_structure[data.pop("e")](data))
    return events
