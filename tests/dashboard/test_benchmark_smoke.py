"""``benchmarks/dashboard.py`` runs at a small N, so that it cannot rot (no figure is checked)."""

from __future__ import annotations

import argparse
import re

import pytest

from benchmarks import dashboard

PAGES = ("overview", "overview json", "tasks, failed", "tasks, id prefix", "task (failed)")


async def test_every_page_renders_at_small_n(capsys: pytest.CaptureFixture[str]) -> None:
    for backend in ("memory", "file"):
        await dashboard.run(argparse.Namespace(tasks=300, backend=backend, repeat=1, dsn=None))
    out = capsys.readouterr().out
    for page in (*PAGES, "workers"):
        timed = re.findall(rf"^  {re.escape(page)}  +[\d.]+ms", out, flags=re.MULTILINE)
        assert len(timed) == 2, (page, out)
    assert not re.search(r"\s\d{3}: ", out), out  # no page answered with an error
