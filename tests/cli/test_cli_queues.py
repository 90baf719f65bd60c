"""``omniq-trio queues``, ``schedules`` and the queue options of ``enqueue`` and ``worker``,
in-process on a temporary journal (the commands are thin calls into the client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from omniq_trio import AsyncOmniQ, QueueInfo, RateLimit, Schedule, Settings, Task
from omniq_trio._cli import main
from omniq_trio._cli._main import parser as _parser
from omniq_trio._cli._main import settings as _settings
from tests.cli._inprocess import assert_one_line, run

ADD = "tests.cli.cli_tasks:add"


pytestmark = pytest.mark.usefixtures("base_dir")


def read(base_dir: Path) -> tuple[list[Task], list[QueueInfo]]:
    async def go() -> tuple[list[Task], list[QueueInfo]]:
        async with AsyncOmniQ(Settings(base_dir=base_dir)) as omniq:
            return await omniq.list_tasks(), await omniq.list_queues()

    return trio.run(go)


def test_enqueue_with_a_queue_and_a_unique_key(
    base_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, err = run(
        capsys, "enqueue", ADD, "[1, 2]", "--queue", "emails", "--unique-key", "k"
    )
    assert (code, err) == (0, "")
    code, again, err = run(
        capsys, "enqueue", ADD, "[3, 4]", "--unique-key", "k", "--unique-for", "60"
    )
    assert code == 0 and again == first
    assert err.startswith(f"omniq-trio enqueue: task {first.strip()} holds unique key 'k'")
    (task,), _ = read(base_dir)
    assert (task.queue, task.unique_key, task.args) == ("emails", "k", (1, 2))
    code, _, err = run(capsys, "enqueue", ADD, "--queue", "no good")
    assert code == 2
    assert_one_line(err, "enqueue")
    assert "queue must be a queue name" in err


def test_queues_lists_pauses_resumes_and_limits(
    base_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "queues")[0] == 1  # no journal yet: nothing to look at
    for queue in ("emails", "emails", "default"):
        assert run(capsys, "enqueue", ADD, "--queue", queue)[0] == 0
    assert run(capsys, "queues", "pause", "emails")[:2] == (
        0,
        "queue emails is paused: no worker claims its tasks until it is resumed\n",
    )
    code, out, _ = run(capsys, "queues", "limit", "default", "--max", "10", "--per", "1m")
    assert (code, out) == (0, "queue default: at most 10 start(s) per 60s, across every worker\n")
    code, out, _ = run(capsys, "queues")
    assert out.splitlines() == [
        "QUEUE    PENDING  RUNNING  RETRYING  SUCCESS  FAILED  CANCELLED  PAUSED  LIMIT",
        "default  1        0        0         0        0       0          no      10/60s",
        "emails   2        0        0         0        0       0          yes     -",
    ]
    code, out, _ = run(capsys, "queues", "--json")
    listed = json.loads(out)
    assert listed[0]["limit"] == {"max_starts": 10, "per": 60.0}
    assert (listed[1]["name"], listed[1]["paused"], listed[1]["counts"]["pending"]) == (
        "emails",
        True,
        2,
    )
    assert run(capsys, "queues", "resume", "emails")[:2] == (0, "queue emails is resumed\n")
    assert run(capsys, "queues", "limit", "default", "--clear")[0] == 0
    _, queues = read(base_dir)
    assert [(q.name, q.paused, q.limit) for q in queues] == [
        ("default", False, None),
        ("emails", False, None),
    ]
    assert run(capsys, "queues", "limit", "api", "--max", "3", "--per", "2s")[0] == 0
    assert read(base_dir)[1][0].limit == RateLimit(3, 2.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["queues", "limit", "api", "--max", "0", "--per", "1"], "max_starts must be an integer"),
        (["queues", "limit", "api", "--max", "2"], "give --max N and --per SECONDS"),
        (["queues", "limit", "api", "--clear", "--max", "2"], "give --clear, or --max"),
        (["queues", "limit", "api", "--max", "2", "--per", "soon"], "--per: 'soon' is not"),
        (["queues", "pause", "a b"], "queue name must be a queue name"),
        (["worker", "--queue", "emails=0"], "the cap of 'emails' must be an integer >= 1"),
    ],
)
def test_bad_queue_commands_are_usage_errors_that_change_nothing(
    base_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(capsys, "enqueue", ADD)[0] == 0
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert_one_line(err, " ".join(argv[: 2 if argv[0] == "queues" else 1]))
    assert message in err
    assert read(base_dir)[1][0].limit is None


def test_worker_queue_options_become_settings() -> None:
    args = _parser().parse_args(
        ["worker", "--queue", "emails=2", "--queue", "reports,default", "--base-dir", "x"]
    )
    settings = _settings(args)
    assert settings.queues == ("emails=2", "reports", "default")
    assert str(settings.base_dir) == "x"
    nested = _parser().parse_args(["queues", "--base-dir", "y", "pause", "emails"])
    assert str(_settings(nested).base_dir) == "y"


def test_schedules_lists_what_pools_recorded(
    base_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "enqueue", ADD)[0] == 0
    nightly = Schedule(ADD, "30 2 * * *", timezone="Europe/Berlin", name="nightly", queue="ops")

    async def record() -> None:
        async with AsyncOmniQ(Settings(base_dir=base_dir)) as omniq:
            slot = nightly.next_slot(1_790_000_000)
            await omniq.store.register_schedules([nightly.info(next_slot=slot, now=0.0)])

    trio.run(record)
    code, out, _ = run(capsys, "schedules")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == [
        "NAME",
        "FUNC",
        "CRON",
        "TIMEZONE",
        "QUEUE",
        "LAST",
        "SLOT",
        "NEXT",
        "SLOT",
    ]
    assert row.startswith("nightly  tests.cli.cli_tasks:add  30 2 * * *  Europe/Berlin  ops")
    assert "  -  " in row and "2026-09-22 02:30 CEST (" in row
    code, out, _ = run(capsys, "schedules", "--json")
    assert code == 0
    (listed,) = json.loads(out)
    assert (listed["name"], listed["last_slot"], listed["queue"]) == ("nightly", None, "ops")
    assert listed["next_slot"] == nightly.next_slot(1_790_000_000)
    assert main(["schedules", "--base-dir", str(base_dir / "none")]) == 1  # no journal there
