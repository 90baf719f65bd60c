"""Each platform's durable sync, by simulating its calls; Windows (no flock) refused by name."""

from __future__ import annotations

import errno
import os
import types
from pathlib import Path

import pytest

from omniq_trio.errors import UnsupportedPlatformError
from omniq_trio.store import JournalStore
from omniq_trio.store._journal import _fileio


def fake_fcntl(calls: list[tuple[str, int]], refuse: int | None = None) -> types.ModuleType:
    module = types.ModuleType("fcntl")
    module.F_FULLFSYNC = 51  # type: ignore[attr-defined]

    def fcntl(fd: int, command: int) -> int:
        calls.append(("F_FULLFSYNC" if command == 51 else str(command), fd))
        if refuse is not None:
            raise OSError(refuse, os.strerror(refuse))
        return 0

    module.fcntl = fcntl  # type: ignore[attr-defined]
    return module


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append(("fdatasync", fd)), raising=False)
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", fd)))
    return calls


def test_linux_uses_fdatasync(
    calls: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fileio, "PLATFORM", "linux")
    _fileio.durable_sync(7)
    assert calls == [("fdatasync", 7)]


def test_macos_uses_f_fullfsync(
    calls: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync on macOS stops at the drive's cache; only F_FULLFSYNC flushes it."""
    monkeypatch.setattr(_fileio, "PLATFORM", "darwin")
    monkeypatch.setattr(_fileio, "fcntl", fake_fcntl(calls))
    monkeypatch.delattr(os, "fdatasync", raising=False)  # macOS has none
    _fileio.durable_sync(7)
    _fileio.full_sync(8)
    assert calls == [("F_FULLFSYNC", 7), ("F_FULLFSYNC", 8)]


def test_macos_falls_back_to_fsync_where_f_fullfsync_is_refused(
    calls: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fileio, "PLATFORM", "darwin")
    monkeypatch.setattr(_fileio, "fcntl", fake_fcntl(calls, refuse=errno.ENOTSUP))
    _fileio.durable_sync(7)
    assert calls == [("F_FULLFSYNC", 7), ("fsync", 7)]


def test_macos_reports_a_real_failure(
    calls: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fileio, "PLATFORM", "darwin")
    monkeypatch.setattr(_fileio, "fcntl", fake_fcntl(calls, refuse=errno.EIO))
    with pytest.raises(OSError) as caught:
        _fileio.durable_sync(7)
    assert caught.value.errno == errno.EIO


def test_other_posix_without_fdatasync_uses_fsync(
    calls: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fileio, "PLATFORM", "freebsd14")
    monkeypatch.delattr(os, "fdatasync", raising=False)
    _fileio.durable_sync(7)
    assert calls == [("fsync", 7)]


@pytest.mark.parametrize("no_flock", ["win32", "no fcntl module"])
async def test_windows_is_refused_at_open_with_a_named_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_flock: str
) -> None:
    if no_flock == "win32":
        monkeypatch.setattr(_fileio, "PLATFORM", "win32")
    else:
        monkeypatch.setattr(_fileio, "fcntl", None)
    base = tmp_path / "data"
    with pytest.raises(UnsupportedPlatformError) as caught:
        await JournalStore(base).open()
    message = str(caught.value)
    assert "flock" in message and "backend='memory'" in message and "postgres" in message
    assert not base.exists(), "refused before creating anything"
