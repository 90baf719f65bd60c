"""``build_task``: a ``Call`` checked and turned into a new PENDING task, or a named error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from omniq_trio import Call, SerializationError, Settings, TaskOptionError, TaskStatus
from omniq_trio._call import build_task
from omniq_trio._codec import JsonCodec, PickleCodec
from tests.tasks import rt_echo

NOW = 1_700_000_000.0
SETTINGS = Settings(backend="memory", default_max_retries=2, default_timeout=30.0)


def build(call: Call, settings: Settings = SETTINGS, codec: Any = None) -> Any:
    return build_task(call, settings=settings, codec=codec or JsonCodec(), now=NOW)


def test_a_call_becomes_a_pending_task_with_the_settings_defaults() -> None:
    task = build(Call(rt_echo, (1, "a"), {"k": [2]}))
    assert (task.func, task.args, task.kwargs) == ("tests.tasks:rt_echo", (1, "a"), {"k": [2]})
    assert (task.status, task.attempts, task.priority) == (TaskStatus.PENDING, 0, 0)
    assert (task.eta, task.created_at) == (NOW, NOW)
    assert (task.max_retries, task.timeout, task.interval) == (2, 30.0, None)
    assert len(task.id) == 32 and int(task.id, 16) >= 0
    assert build(Call(rt_echo)).id != task.id


def test_options_given_win_over_the_defaults() -> None:
    task = build(
        Call(
            "app.tasks:work",
            max_retries=0,
            timeout=dt.timedelta(minutes=1),
            priority=-3,
            interval=2,
            retry_on_timeout=True,
        )
    )
    assert (task.func, task.max_retries, task.timeout) == ("app.tasks:work", 0, 60.0)
    assert (task.priority, task.interval, task.retry_on_timeout) == (-3, 2.0, True)


@pytest.mark.parametrize(
    ("when", "eta"),
    [
        ({"delay": 0}, NOW),
        ({"delay": 1.5}, NOW + 1.5),
        ({"delay": dt.timedelta(hours=1)}, NOW + 3600),
        ({"eta": NOW - 60}, NOW - 60),  # in the past: due at once, kept as given
        ({"eta": dt.datetime.fromtimestamp(NOW + 5, dt.UTC)}, NOW + 5),
    ],
)
def test_the_eta_comes_from_a_delay_or_is_given(when: dict[str, Any], eta: float) -> None:
    assert build(Call(rt_echo, **when)).eta == eta


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"eta": NOW, "delay": 1}, "eta or delay"),
        ({"eta": dt.datetime(2030, 1, 1)}, "eta"),  # naive: which zone?
        ({"eta": float("inf")}, "eta"),
        ({"eta": "tomorrow"}, "eta"),
        ({"delay": -1}, "delay"),
        ({"delay": True}, "delay"),
        ({"timeout": 0}, "timeout"),
        ({"interval": 0}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"priority": 1.5}, "priority"),
        ({"priority": True}, "priority"),
        ({"max_retries": -1}, "max_retries"),
        ({"kwargs": {1: "a"}}, "kwargs"),
    ],
)
def test_bad_options_are_a_named_error(options: dict[str, Any], names: str) -> None:
    kwargs = options.pop("kwargs", {})
    with pytest.raises(TaskOptionError, match=names):
        build(Call(rt_echo, (), kwargs, **options))


def test_arguments_are_encoded_by_the_codec() -> None:
    with pytest.raises(SerializationError, match="not JSON-serializable"):
        build(Call(rt_echo, (object(),)))
    task = build(Call(rt_echo, ({1, 2},)), codec=PickleCodec())
    assert PickleCodec().decode_args(task.args, task.kwargs) == (({1, 2},), {})
