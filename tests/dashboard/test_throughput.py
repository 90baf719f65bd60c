"""Throughput from sampled counts, and the chart drawn from it."""

from __future__ import annotations

from collections.abc import Iterator

import trio

from omniq_trio import TaskStatus
from omniq_trio.dashboard._chart import throughput_chart
from omniq_trio.dashboard._throughput import Throughput

T0 = 1_700_000_000.0  # a multiple of 10: bucket edges fall on whole tens


def counts(succeeded: int, failed: int = 0) -> dict[TaskStatus, int]:
    return {TaskStatus.SUCCESS: succeeded, TaskStatus.FAILED: failed, TaskStatus.PENDING: 9}


def test_increases_are_filed_under_the_bucket_they_were_seen_in() -> None:
    throughput = Throughput(bucket_seconds=10, buckets=6)
    throughput.record(T0 + 1, counts(100, 5))  # the first sample is the baseline
    throughput.record(T0 + 4, counts(103, 5))
    throughput.record(T0 + 12, counts(110, 6))
    throughput.record(T0 + 15, counts(90, 6))  # a purge: not negative work
    throughput.record(T0 + 18, counts(92, 6))
    series = throughput.series(T0 + 25)
    assert [b.start for b in series] == [T0 + s for s in (-30, -20, -10, 0, 10, 20)]
    assert [(b.succeeded, b.failed) for b in series] == [
        (0, 0),
        (0, 0),
        (0, 0),
        (3, 0),
        (9, 1),
        (0, 0),
    ]
    assert [b.sampled for b in series] == [False, False, False, True, True, True]
    # 13 finished in the last 25 s of sampling
    assert throughput.per_minute(T0 + 25) == 13 * 60 / 24


def test_old_buckets_are_dropped() -> None:
    throughput = Throughput(bucket_seconds=10, buckets=3)
    throughput.record(T0, counts(0))
    throughput.record(T0 + 1, counts(5))
    throughput.record(T0 + 100, counts(6))
    assert sum(b.finished for b in throughput.series(T0 + 100)) == 1
    assert len(throughput._counts) == 1


def test_no_sample_no_rate() -> None:
    assert Throughput().per_minute(T0) is None
    assert not any(b.sampled for b in Throughput().series(T0))


def test_the_chart_scales_to_a_round_maximum_and_stacks_failures() -> None:
    throughput = Throughput(bucket_seconds=10, buckets=60)
    throughput.record(T0, counts(0))
    throughput.record(T0 + 5, counts(30, 7))
    chart = throughput_chart(throughput.series(T0 + 5))
    assert [t.label for t in chart.y_ticks] == ["0", "25", "50"]
    last = chart.bars[-1]
    assert last.ok_height > 0 and last.failed_height > 0
    assert last.failed_y + last.failed_height == last.ok_y  # on top of the successes
    assert abs(last.ok_height / last.failed_height - 30 / 7) < 0.01
    assert "30 succeeded, 7 failed" in last.title
    assert "not sampled" in chart.bars[0].title
    assert [t.label for t in chart.x_ticks] == ["-10m", "-8m", "-6m", "-4m", "-2m", "now"]


async def test_the_sampler_reads_on_a_timer_and_survives_a_failed_read(
    autojump_clock: object,
) -> None:
    throughput = Throughput(bucket_seconds=10, buckets=6)
    reads: Iterator[dict[TaskStatus, int] | Exception] = iter(
        [counts(0), RuntimeError("store down"), counts(4), counts(6)]
    )

    async def read() -> tuple[float, dict[TaskStatus, int]]:
        value = next(reads)
        if isinstance(value, Exception):
            raise value
        return T0 + trio.current_time(), value

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: throughput.run(read, interval=5, task_status=task_status)
        )
        await trio.sleep(16)
        nursery.cancel_scope.cancel()
    # read at 0 (the baseline), 5 (failed), 10 (+4) and 15 (+2): both in [10, 20)
    assert [b.succeeded for b in throughput.series(T0 + 15)][-2:] == [0, 6]
