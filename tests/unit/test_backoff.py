"""Retry delays and repeating tasks' next slots, as pure functions."""

from __future__ import annotations

import pytest

from omniq_trio.worker._backoff import next_interval_eta, retry_delay


def no_jitter(attempts: int, base: float = 1.0, cap: float = 300.0) -> float:
    return retry_delay(attempts, base=base, cap=cap, jitter=0.0)


def test_the_delay_doubles_from_base_up_to_the_cap() -> None:
    assert [no_jitter(n) for n in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert [no_jitter(n, base=0.5, cap=3.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_no_base_means_no_wait() -> None:
    assert no_jitter(5, base=0.0) == 0.0


@pytest.mark.parametrize("attempts", [63, 64, 1100, 10**9])
def test_many_attempts_do_not_overflow(attempts: int) -> None:
    assert no_jitter(attempts) == 300.0


@pytest.mark.parametrize(("rand", "delay"), [(0.0, 8.0), (0.5, 7.6), (1.0, 7.2)])
def test_jitter_shortens_by_at_most_its_fraction(rand: float, delay: float) -> None:
    got = retry_delay(3, base=1.0, cap=300.0, jitter=0.1, rand=lambda: rand)
    assert got == pytest.approx(delay)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (99.0, 110.0),  # not due yet: the slot after its eta
        (100.0, 110.0),  # on time
        (105.0, 110.0),
        (110.0, 120.0),  # on a slot: the next one, never now again
        (137.5, 140.0),  # ran long or no worker was up: missed slots are skipped
        (1_000.0, 1_010.0),
    ],
)
def test_the_next_slot_is_the_first_on_the_grid_after_now(now: float, expected: float) -> None:
    assert next_interval_eta(100.0, 10.0, now) == expected
