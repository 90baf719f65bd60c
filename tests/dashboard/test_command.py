"""``omniq-trio dashboard``: as a process on a journal, and its refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from omniq_trio import OmniQ, Settings
from omniq_trio._cli import main
from tests.conftest import ROOT
from tests.dashboard import dash_tasks

#: Generous bound for anything the process must do; only a hang would reach it.
PATIENCE = 30.0


def journal_with_one_task(base_dir: Path) -> str:
    with OmniQ(Settings(backend="file", base_dir=base_dir)) as omniq:
        return omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hi")


def test_the_command_prints_its_address_serves_and_stops_on_sigint(tmp_path: Path) -> None:
    task_id = journal_with_one_task(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIQ_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "omniq_trio", "dashboard", "--port", "0", "--read-only"],
        cwd=ROOT,
        env={
            **env,
            "PYTHONPATH": str(ROOT),
            "OMNIQ_BASE_DIR": str(tmp_path),
            "OMNIQ_DASHBOARD_TOKEN": "from-env",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once it listens
        assert line.startswith("omniq-trio dashboard (read-only): open http://127.0.0.1:"), line
        url = line.split()[4]
        assert url.endswith("/?token=from-env")
        base = url.partition("?")[0]
        bearer = {"authorization": "Bearer from-env"}
        with httpx.Client(timeout=PATIENCE) as client:
            page = client.get(f"{base}tasks", headers=bearer)
            assert page.status_code == 200 and task_id in page.text
            assert client.get(f"{base}tasks").status_code == 401
            # another process's enqueue: the dashboard reads the journal as it grows
            later = journal_with_one_task(tmp_path)
            assert later in client.get(f"{base}tasks", headers=bearer).text
            assert client.get(f"{base}api/overview", headers=bearer).json()["total"] == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=PATIENCE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_no_token_off_loopback_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal_with_one_task(tmp_path)
    code = main(["dashboard", "--base-dir", str(tmp_path), "--no-token", "--host", "0.0.0.0"])
    assert code == 2
    assert "only allowed on a loopback address" in capsys.readouterr().err


def test_no_journal_is_an_error_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", "--base-dir", str(tmp_path / "nothing")]) == 1
    assert "no journal" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_token_and_no_token_do_not_go_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal_with_one_task(tmp_path)
    assert main(["dashboard", "--base-dir", str(tmp_path), "--token", "t", "--no-token"]) == 2
    assert "not both" in capsys.readouterr().err
