"""The codecs on their own: what they store, what they give back, what they refuse."""

from __future__ import annotations

import base64
import datetime as dt
import pickle
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from omniq_trio import SerializationError
from omniq_trio._codec import PICKLE_KEY, JsonCodec, PickleCodec, check_json, codec_for


@attrs.frozen
class Point:
    x: int
    y: int


def stored(value: Any) -> Any:
    """What a store hands back: its JSON round trip."""
    return orjson.loads(orjson.dumps(value))


# ---------------------------------------------------------------------- pickle


def test_pickle_round_trips_what_json_cannot_store() -> None:
    codec = PickleCodec()
    args = (Point(1, 2), {1, 2}, dt.datetime(2024, 5, 1, tzinfo=dt.UTC), Decimal("1.5"))
    kwargs = {"when": dt.timedelta(seconds=3), "key": (1, "a")}
    stored_args, stored_kwargs = codec.encode_args(args, kwargs)
    assert stored_kwargs == {}
    check_json(list(stored_args), "args")  # plain JSON: any store keeps it
    assert codec.decode_args(tuple(stored(list(stored_args))), stored(stored_kwargs)) == (
        args,
        kwargs,
    )
    for value in (Point(3, 4), None, b"bytes", [Point(0, 0)]):
        assert codec.decode_value(stored(codec.encode_value(value))) == value


def test_pickle_stored_form_is_a_base64_pickle_under_one_key() -> None:
    value = PickleCodec().encode_value(Point(5, 6))
    assert value.keys() == {PICKLE_KEY}
    assert pickle.loads(base64.b64decode(value[PICKLE_KEY])) == Point(5, 6)


def test_pickle_refuses_what_cannot_be_pickled_with_a_named_error() -> None:
    with pytest.raises(SerializationError, match="cannot pickle function"):
        PickleCodec().encode_value(lambda: None)
    with pytest.raises(SerializationError, match="cannot pickle tuple"):
        PickleCodec().encode_args((lambda: None,), {})


def test_pickle_passes_plain_values_through() -> None:
    """A pickle worker runs tasks a JSON producer enqueued, and reads their results."""
    codec = PickleCodec()
    assert codec.decode_args((1, "two"), {"three": 3}) == ((1, "two"), {"three": 3})
    assert codec.decode_value({"a": 1}) == {"a": 1}
    not_ours = {PICKLE_KEY: "x", "other": 1}  # only a dict of exactly that key is a pickle
    assert codec.decode_value(not_ours) == not_ours


# ------------------------------------------------------------------------ json


def test_json_copies_and_normalises_tuples() -> None:
    codec = JsonCodec()
    inner = [1, 2]
    args, kwargs = codec.encode_args((inner, (3, 4)), {"d": {"k": (5,)}})
    inner.append(99)  # the caller's later change does not reach the stored task
    assert (args, kwargs) == (([1, 2], [3, 4]), {"d": {"k": [5]}})
    assert codec.encode_args((), {}) == ((), {})
    assert codec.encode_value((1, 2)) == [1, 2]
    assert codec.decode_value([1, 2]) == [1, 2]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([object()], r"args\[0\]: builtins.object is not JSON-serializable"),
        ([{"k": [float("nan")]}], r"args\[0\]\['k'\]\[0\]: nan is not a JSON number"),
        ([2**63], "does not fit in 64 bits"),
        ([{1: "a"}], "dict key 1 is a int; JSON keys are strings"),
    ],
)
def test_json_refuses_what_would_not_come_back_the_same(value: list[Any], words: str) -> None:
    with pytest.raises(SerializationError, match=words):
        JsonCodec().encode_args(tuple(value), {})


def test_json_accepts_the_edges_of_what_it_stores() -> None:
    codec = JsonCodec()
    edges: tuple[Any, ...] = (-(2**63), 2**63 - 1, 1e308, "", True, None, [], {})
    assert codec.encode_args(edges, {}) == (tuple(stored(list(edges))), {})


def test_json_worker_refuses_pickled_arguments_by_name() -> None:
    pickled, _ = PickleCodec().encode_args((1,), {})
    with pytest.raises(SerializationError, match="serializer='pickle'"):
        JsonCodec().decode_args(pickled, {})


def test_codec_for_names_each_serializer() -> None:
    assert isinstance(codec_for("pickle"), PickleCodec)
    assert isinstance(codec_for("json"), JsonCodec)
    assert (codec_for("json").name, codec_for("pickle").name) == ("json", "pickle")
