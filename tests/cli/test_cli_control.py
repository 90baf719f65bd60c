"""``omniq-trio`` on task control: progress in ``list`` and ``inspect``, ``retry --failed``,
``purge --include-failed``. In-process through ``main(argv)``, on a journal the
test fills through the store (no worker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from omniq_trio import AsyncOmniQ, Progress, Settings, TaskError, TaskStatus
from tests.cli._inprocess import run

ADD = "tests.cli.cli_tasks:add"
OTHER = "tests.cli.cli_tasks:other"
W = "cli-test-worker"


pytestmark = pytest.mark.usefixtures("base_dir")


def fill(base_dir: Path) -> dict[str, str]:
    """Two failed ADD tasks, one failed OTHER, one running ADD at 40%."""

    async def go() -> dict[str, str]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=base_dir)) as omniq:
            ids = {
                name: await omniq.enqueue(func)
                for name, func in [("a1", ADD), ("a2", ADD), ("o1", OTHER), ("run", ADD)]
            }
            store, now = omniq.store, omniq.clock.now()
            await store.claim(W, now=now, limit=4, lease_until=now + 3600)
            for name in ("a1", "a2", "o1"):
                error = TaskError("builtins.ValueError", f"{name} broke")
                await store.fail(ids[name], worker_id=W, error=error, at=now)
            progress = Progress(0.4, "chunk 4 of 10", now)
            await store.set_progress(ids["run"], worker_id=W, progress=progress)
            return ids

    return trio.run(go)


def statuses(base_dir: Path) -> dict[str, TaskStatus]:
    async def go() -> dict[str, TaskStatus]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=base_dir)) as omniq:
            return {t.id: t.status for t in await omniq.list_tasks()}

    return trio.run(go)


def test_progress_in_list_and_inspect(base_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = fill(base_dir)
    code, out, _ = run(capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert "PROGRESS" in header.split()
    running = next(row for row in rows if row.startswith(ids["run"]))
    assert "40%" in running.split()
    code, out, _ = run(capsys, "list", "--json")
    by_id = {t["id"]: t for t in json.loads(out)}
    assert by_id[ids["run"]]["progress"]["fraction"] == 0.4
    assert by_id[ids["a1"]]["progress"] is None
    code, out, _ = run(capsys, "inspect", ids["run"])
    assert code == 0
    assert "progress: 40% chunk 4 of 10 (reported" in " ".join(out.split())


def test_retry_failed_of_one_function_then_all(
    base_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = fill(base_dir)
    code, out, _ = run(capsys, "retry", "--failed", "--func", ADD)
    assert (code, out) == (0, "2 failed task(s) pending again\n")
    now = statuses(base_dir)
    assert [now[ids[n]] for n in ("a1", "a2", "o1")] == [
        TaskStatus.PENDING,
        TaskStatus.PENDING,
        TaskStatus.FAILED,
    ]
    code, out, _ = run(capsys, "retry", "--failed")
    assert (code, out) == (0, "1 failed task(s) pending again\n")


@pytest.mark.parametrize(
    "argv",
    [["retry"], ["retry", "abc", "--failed"], ["retry", "abc", "--func", ADD]],
)
def test_retry_takes_an_id_or_failed(
    base_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("omniq-trio retry: error: ") and "Traceback" not in err


def test_purge_keeps_young_failures_unless_asked(
    base_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = fill(base_dir)
    code, out, _ = run(capsys, "purge", "--older-than", "0s")
    assert code == 0 and out.startswith("purged 0 task(s)") and "kept" in out
    code, out, _ = run(capsys, "purge", "--older-than", "0s", "--include-failed")
    assert code == 0 and out.startswith("purged 3 task(s)")
    assert set(statuses(base_dir)) == {ids["run"]}
