"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# tasks used by subprocesses must be importable as `tests.tasks`
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POSTGRES_DSN = os.environ.get("OMNIQ_TEST_POSTGRES_DSN")

requires_postgres = pytest.mark.skipif(
    not POSTGRES_DSN, reason="set OMNIQ_TEST_POSTGRES_DSN to run the PostgreSQL tests"
)
