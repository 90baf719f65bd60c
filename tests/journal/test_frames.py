"""Framing: batches survive whole or not at all; a torn tail is told apart from damage;
each event's ref finds its bytes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniq_trio.store._journal._frames import (
    FRAME_HEADER,
    MAX_CHUNK,
    BatchBuilder,
    encode_batch,
    ref_place,
    scan,
)

events = st.lists(
    st.dictionaries(
        st.sampled_from("abcde"), st.text(max_size=30) | st.integers(-(2**63), 2**63 - 1)
    ),
    min_size=1,
    max_size=5,
)
batches = st.lists(events, min_size=1, max_size=6)


def encode(batch: list[dict[str, object]]) -> bytes:
    return encode_batch([orjson.dumps(event) for event in batch])


def decoded(frames: list[tuple[int, bytes]]) -> list[object]:
    return [orjson.loads(line) for _, payload in frames for line in payload.split(b"\n")]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_round_trip(all_batches: list[list[dict[str, object]]]) -> None:
    data = b"".join(encode(b) for b in all_batches)
    found = scan(data)
    assert [decoded(b) for b in found.batches] == all_batches
    assert found.end == len(data) and found.bad_offset is None


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, events, st.data())
def test_truncated_last_batch_is_torn(
    earlier: list[list[dict[str, object]]], last: list[dict[str, object]], data: st.DataObject
) -> None:
    head = b"".join(encode(b) for b in earlier)
    tail = encode(last)
    cut = data.draw(st.integers(0, len(tail) - 1))
    found = scan(head + tail[:cut])
    assert [decoded(b) for b in found.batches] == earlier
    assert found.end == len(head)
    assert cut == 0 or found.torn


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, events, st.data())
def test_flipped_byte_in_last_batch_is_torn(
    earlier: list[list[dict[str, object]]], last: list[dict[str, object]], data: st.DataObject
) -> None:
    head = b"".join(encode(b) for b in earlier)
    tail = bytearray(encode(last))
    i = data.draw(st.integers(0, len(tail) - 1))
    tail[i] ^= data.draw(st.integers(1, 255))
    found = scan(head + bytes(tail))
    assert [decoded(b) for b in found.batches][: len(earlier)] == earlier
    if found.bad_offset is not None:
        assert found.torn and found.end == len(head)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, batches, st.data())
def test_damage_before_the_tail_is_reported(
    before: list[list[dict[str, object]]],
    after: list[list[dict[str, object]]],
    data: st.DataObject,
) -> None:
    head = b"".join(encode(b) for b in before)
    victim = bytearray(encode([{"a": "victim"}]))
    tail = b"".join(encode(b) for b in after)
    i = data.draw(st.integers(FRAME_HEADER.size, len(victim) - 1))  # inside the payload
    victim[i] ^= data.draw(st.integers(1, 255))
    found = scan(head + bytes(victim) + tail)
    assert found.damaged
    assert found.bad_offset == len(head)
    assert [decoded(b) for b in found.batches] == before


def test_a_big_batch_spans_frames_and_counts_only_when_whole() -> None:
    batch = [{"a": "x" * 1000, "i": i} for i in range(2 * MAX_CHUNK // 1000)]
    data = encode([{"a": "first"}]) + encode(batch)
    found = scan(data)
    assert decoded(found.batches[1]) == batch
    first_frame_end = len(encode([{"a": "first"}]))
    # cut inside the second frame of the big batch: the whole batch goes
    (length,) = FRAME_HEADER.unpack_from(data, first_frame_end)[:1]
    cut = first_frame_end + FRAME_HEADER.size + length + 100
    found = scan(data[:cut])
    assert [decoded(b) for b in found.batches] == [[{"a": "first"}]]
    assert found.torn and found.end == first_frame_end


@pytest.mark.parametrize("tolerate_holes", [False, True])
def test_zeros_before_a_valid_frame(tolerate_holes: bool) -> None:
    """Unwritten blocks from a crash read as zeros: a hole under relaxed fsync, damage otherwise."""
    head = encode([{"a": 1}])
    data = head + b"\0" * 64 + encode([{"a": 2}])
    found = scan(data, tolerate_holes=tolerate_holes)
    assert found.end == len(head)
    assert found.damaged is not tolerate_holes


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.integers(0, 1000))
def test_each_ref_finds_its_event(all_batches: list[list[dict[str, object]]], base: int) -> None:
    data = b"\0" * base
    refs = []
    for batch in all_batches:
        builder = BatchBuilder(len(data))
        refs += [builder.add(orjson.dumps(event)) for event in batch]
        data += builder.finish()
    events = [event for batch in all_batches for event in batch]
    for ref, event in zip(refs, events, strict=True):
        offset, length = ref_place(ref)
        assert orjson.loads(data[offset : offset + length]) == event
    found = scan(data[base:], base)
    assert [decoded(b) for b in found.batches] == all_batches


def test_format_1_arrays_are_read() -> None:
    """0.1 wrote each batch as a JSON array, ``+``-prefixed when more frames follow."""

    def frame(payload: bytes) -> bytes:
        import zlib

        return FRAME_HEADER.pack(len(payload), zlib.crc32(payload)) + payload

    data = frame(b'+[{"a":1}]') + frame(b'[{"a":2},{"a":3}]') + frame(b'[{"a":4}]')
    found = scan(data, version=1)
    arrays = [[orjson.loads(payload) for _, payload in batch] for batch in found.batches]
    assert arrays == [[[{"a": 1}], [{"a": 2}, {"a": 3}]], [[{"a": 4}]]]
    assert found.end == len(data) and not found.torn
