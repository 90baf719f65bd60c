"""How task arguments and results are turned into storable values and back.

Stores keep arguments and results in their *stored form*: plain JSON values
(``None``, bools, numbers, strings, lists, string-keyed dicts). The JSON codec
(the default) only checks and copies; the pickle codec (opt-in, for trusted
producers) wraps a pickle in ``{"$pickle": "<base64>"}``. Values are decoded
only where they are used, so a store never unpickles anything.
"""

from __future__ import annotations

import base64
import math
import pickle
from collections.abc import Mapping
from typing import Any, Final, Protocol

import orjson

from .errors import SerializationError

__all__ = ["Codec", "JsonCodec", "PickleCodec", "codec_for"]

PICKLE_KEY: Final = "$pickle"
_INT64: Final = 2**63


class Codec(Protocol):
    """Turns arguments and results into stored form and back."""

    name: str

    def encode_args(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Stored form of a call's arguments; raises SerializationError, changing nothing."""
        ...

    def decode_args(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments to call the function with."""
        ...

    def encode_value(self, value: Any) -> Any:
        """Stored form of a return value; raises SerializationError."""
        ...

    def decode_value(self, value: Any) -> Any:
        """A return value from its stored form."""
        ...


def check_json(value: Any, where: str) -> None:
    """Raise SerializationError unless ``value`` survives a JSON round trip unchanged
    (tuples aside, which come back as lists)."""
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise SerializationError(f"{where}: integer {value} does not fit in 64 bits")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{where}: {value} is not a JSON number")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{where}: dict key {key!r} is a {type(key).__name__}; JSON keys are strings"
                )
            check_json(item, f"{where}[{key!r}]")
        return
    raise SerializationError(
        f"{where}: {type(value).__module__}.{type(value).__qualname__} is not JSON-serializable; "
        "pass plain data (str, int, float, bool, None, list, dict) or use serializer='pickle'"
    )


def _copy_json(value: Any) -> Any:
    # the round trip both copies (so later mutation by the caller cannot change
    # the stored task) and normalises tuples to lists, as every store returns them
    return orjson.loads(orjson.dumps(value))


class JsonCodec:
    """Arguments and results as plain JSON values: portable and safe to read."""

    name = "json"

    def encode_args(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if not args and not kwargs:
            return (), {}
        check_json(list(args), "args")
        check_json(dict(kwargs), "kwargs")
        return tuple(_copy_json(list(args))), _copy_json(dict(kwargs))

    def decode_args(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if _is_pickled(args):
            raise SerializationError(
                "this task's arguments were pickled; run the worker with serializer='pickle'"
            )
        return tuple(args), dict(kwargs)

    def encode_value(self, value: Any) -> Any:
        if value is None or type(value) in (str, int, bool):  # immutable: nothing to copy
            check_json(value, "return value")
            return value
        check_json(value, "return value")
        return _copy_json(value)

    def decode_value(self, value: Any) -> Any:
        return value


class PickleCodec:
    """Any picklable arguments and results. Unpickling runs code: trusted producers only."""

    name = "pickle"

    def encode_args(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.encode_value((tuple(args), dict(kwargs))),), {}

    def decode_args(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if not _is_pickled(args):
            return tuple(args), dict(kwargs)
        call_args, call_kwargs = self.decode_value(args[0])
        return call_args, call_kwargs

    def encode_value(self, value: Any) -> Any:
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(f"cannot pickle {type(value).__qualname__}: {exc}") from exc
        return {PICKLE_KEY: base64.b64encode(data).decode("ascii")}

    def decode_value(self, value: Any) -> Any:
        if isinstance(value, dict) and value.keys() == {PICKLE_KEY}:
            return pickle.loads(base64.b64decode(value[PICKLE_KEY]))
        return value


def _is_pickled(args: tuple[Any, ...]) -> bool:
    return len(args) == 1 and isinstance(args[0], dict) and args[0].keys() == {PICKLE_KEY}


def codec_for(name: str) -> Codec:
    """The codec named by ``Settings.serializer``."""
    return PickleCodec() if name == "pickle" else JsonCodec()
