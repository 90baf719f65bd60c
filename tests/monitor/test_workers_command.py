"""``omniq-trio workers``: the registry as a table and as JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import trio

from omniq_trio import WorkerInfo
from omniq_trio._cli import main
from omniq_trio.store import JournalStore


def _register(base_dir: Path, *infos: WorkerInfo) -> None:
    async def write() -> None:
        async with JournalStore(base_dir) as store:
            for info in infos:
                await store.register_worker(info)

    trio.run(write)


def test_workers_as_a_table_and_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNIQ_BASE_DIR", raising=False)
    now = time.time()
    busy = WorkerInfo(
        "vm:1:aa", "vm", 1, 4, None, now - 3600, now - 2, now + 28, ("t1", "t2"), 7, 1
    )
    picky = WorkerInfo("vm:2:bb", "vm", 2, 1, ("mail", "sms"), now - 60, now - 1, now + 29)
    dead = WorkerInfo("vm:3:cc", "vm", 3, 1, None, now - 600, now - 100, now - 70)
    _register(tmp_path, busy, picky, dead)
    args = ["--base-dir", str(tmp_path)]

    assert main(["workers", *args]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "ID", "HOST", "PID", "BUSY", "QUEUES", "STARTED", "SEEN", "SUCCEEDED", "FAILED"
    ]  # fmt: skip
    assert rows[0].split()[:5] == ["vm:1:aa", "vm", "1", "2/4", "all"]
    assert rows[0].split()[-2:] == ["7", "1"]
    assert rows[1].split()[:5] == ["vm:2:bb", "vm", "2", "0/1", "mail,sms"]
    assert len(rows) == 2  # the dead one's heartbeat expired

    assert main(["workers", *args, "--running"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["vm:1:aa  t1", "vm:1:aa  t2"]

    assert main(["workers", *args, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [w["id"] for w in listed] == ["vm:1:aa", "vm:2:bb"]
    assert listed[0] == {
        "id": "vm:1:aa",
        "hostname": "vm",
        "pid": 1,
        "concurrency": 4,
        "queues": None,
        "started_at": now - 3600,
        "last_seen": now - 2,
        "expires_at": now + 28,
        "running": ["t1", "t2"],
        "succeeded": 7,
        "failed": 1,
    }
    assert listed[1]["queues"] == ["mail", "sms"]


def test_no_workers_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNIQ_BASE_DIR", raising=False)
    _register(tmp_path)
    assert main(["workers", "--base-dir", str(tmp_path)]) == 0
    assert "no live workers" in capsys.readouterr().out
    assert main(["workers", "--base-dir", str(tmp_path / "nothing")]) == 1
    assert "no journal" in capsys.readouterr().err
