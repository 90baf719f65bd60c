"""Fixtures of the CLI tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def base_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``OMNIQ_*`` variable but ``OMNIQ_BASE_DIR``, a directory not made yet."""
    for name in os.environ:
        if name.startswith("OMNIQ_"):
            monkeypatch.delenv(name)
    path = tmp_path / "data"
    monkeypatch.setenv("OMNIQ_BASE_DIR", str(path))
    return path
