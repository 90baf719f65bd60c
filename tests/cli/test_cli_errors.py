"""Bad input to every ``omniq-trio`` command: one line on stderr, no traceback, exit 2 or 1.

Run in-process through ``main(argv)``: none of these reaches a worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli._inprocess import assert_one_line, run
from tests.conftest import ROOT

ADD = "tests.cli.cli_tasks:add"


pytestmark = pytest.mark.usefixtures("base_dir")


USAGE_ERRORS = [
    ["worker", "--concurrency", "0"],
    ["worker", "--concurrency", "many"],
    ["worker", "--backend", "redis"],
    ["worker", "--poll-interval", "-1"],
    ["enqueue"],
    ["enqueue", "not a path"],
    ["enqueue", ADD, "[1"],
    ["enqueue", ADD, '{"a": 1}'],
    ["enqueue", ADD, "--kwargs", "[1, 2]"],
    ["enqueue", ADD, "--delay", "-5"],
    ["enqueue", ADD, "--max-retries", "-1"],
    ["status", "--watch", "often"],
    ["list", "--status", "sleeping"],
    ["list", "--limit", "ten"],
    ["inspect"],
    ["cancel"],
    ["retry"],
    ["purge"],
    ["purge", "--older-than", "a while"],
    ["compact", "--dsn", "postgresql://app@db/app"],
    ["repair", "--dsn", "postgresql://app@db/app"],
    ["migrate", "--backend", "postgres"],  # and no DSN
    ["frobnicate"],
    [],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert_one_line(err, argv[0] if argv and argv[0] != "frobnicate" else "")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OMNIQ_BACKEND", "redis"),
        ("OMNIQ_BACKEND", "memory"),
        ("OMNIQ_CONCURENCY", "4"),  # a typo of a setting stays an error
    ],
)
def test_bad_environment_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    code, _, err = run(capsys, "status")
    assert code == 2
    assert_one_line(err, "status")


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["list"],
        ["inspect", "abc"],
        ["cancel", "abc"],
        ["retry", "abc"],
        ["purge", "--older-than", "1d"],
        ["compact"],
        ["repair", "--dry-run"],
    ],
    ids=" ".join,
)
def test_no_journal_is_reported_and_not_created(
    capsys: pytest.CaptureFixture[str], base_dir: Path, argv: list[str]
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert_one_line(err, argv[0])
    assert f"no journal in {base_dir}" in err
    assert not base_dir.exists()


def test_an_unrelated_omniq_variable_is_a_warning_not_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "enqueue", ADD, "[1, 2]")[0] == 0
    monkeypatch.setenv("OMNIQ_UNRELATED", "1")
    code, out, err = run(capsys, "status")
    assert code == 0 and "total" in out
    assert (
        err == "omniq-trio status: warning: OMNIQ_UNRELATED is not an omniq_trio setting; ignored\n"
    )


def test_runtime_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, task_id, _ = run(capsys, "enqueue", ADD, "[1, 2]")
    task_id = task_id.strip()
    assert code == 0
    for argv, expected in [
        (["inspect", "no-such-task"], "no task with id 'no-such-task'"),
        (["cancel", "no-such-task"], "no task with id"),
        (["retry", task_id], "is pending; only failed tasks can be retried"),
        (["worker", "--import", "no_such_module_anywhere"], "cannot import"),
        (["migrate", "--dsn", "postgresql://app@127.0.0.1:1/app"], ""),  # no server or driver
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 1, argv
        assert_one_line(err, argv[0])
        assert expected in err
    assert run(capsys, "cancel", task_id)[0] == 0
    code, _, err = run(capsys, "cancel", task_id)
    assert code == 1 and "already finished (cancelled)" in err


def test_enqueue_warns_about_a_module_it_cannot_find(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "enqueue", "not_installed_here.tasks:work")
    assert code == 0 and len(out.strip()) == 32
    assert err.startswith("omniq-trio enqueue: warning: module 'not_installed_here.tasks'")


def test_a_process_prints_one_line_too(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omniq_trio", "inspect", "abc", "--base-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMNIQ_ASYNCIO_BROKER": "redis"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "omniq-trio inspect: warning: OMNIQ_ASYNCIO_BROKER is not an omniq_trio setting; "
        f"ignored\nomniq-trio inspect: error: no journal in {tmp_path} "
        "(nothing was ever enqueued there); check --base-dir or OMNIQ_BASE_DIR\n"
    )
