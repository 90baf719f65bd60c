"""Bounds on what a task carries: its stored call (``Settings.max_task_bytes``) and
its stored result (``Settings.max_result_bytes``).

Sizes are of the *stored form* (the JSON values stores keep; a pickle is its
base64 text inside them), measured as compact JSON, so ``enqueue`` and the
worker measure the same thing, and a worker can measure a task before
decoding (unpickling) anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .errors import ResultTooLargeError, SerializationError, TaskTooLargeError

__all__ = ["call_size", "check_call_size", "check_result_size"]


def _json_size(value: Any, what: str) -> int:
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:  # a task written by other means, say
        raise SerializationError(f"the task's stored {what} is not JSON data: {exc}") from None


def call_size(func: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """Bytes of a stored call: its function path and its arguments as JSON."""
    size = len(func.encode())
    size += _json_size(args, "arguments") if args else 2  # "[]"
    size += _json_size(kwargs, "arguments") if kwargs else 2  # "{}"
    return size


def check_call_size(
    func: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, limit: int
) -> None:
    """Raise :class:`TaskTooLargeError` if the stored call is larger than ``limit`` bytes."""
    size = call_size(func, args, kwargs)
    if size > limit:
        raise TaskTooLargeError(size, limit)


def check_result_size(value: Any, *, limit: int) -> None:
    """Raise :class:`ResultTooLargeError` if a stored result is larger than ``limit`` bytes."""
    if value is None:
        return
    size = _json_size(value, "return value")
    if size > limit:
        raise ResultTooLargeError(size, limit)
