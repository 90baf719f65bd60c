"""What the in-process CLI tests share: ``main(argv)`` run as a command would be
(their clean environment is the ``base_dir`` fixture in ``conftest.py``)."""

from __future__ import annotations

import pytest

from omniq_trio._cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``omniq-trio ARGV...`` in-process: its exit code, stdout and stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's way out
        assert isinstance(exc.code, int)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str, command: str) -> None:
    """``err`` is one ``omniq-trio COMMAND: error: ...`` line, with no traceback."""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"omniq-trio {command}".rstrip() + ": error: "), err
    assert "Traceback" not in err
