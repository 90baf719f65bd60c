"""Every Python block in docs/ runs (or says why not), and the reference pages are complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from omniq_trio.config import ENV_PREFIX, Settings
from tests.conftest import ROOT
from tests.docs._blocks import read_blocks

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
RUNNER = Path(__file__).with_name("_run_page.py")
#: where pages may include files from: each is run by a test of its own
INCLUDABLE = ("examples/",)


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


def _runs_python(page: Path) -> bool:
    return any(b.is_python and b.not_runnable is None and not b.includes for b in read_blocks(page))


def test_there_are_pages_with_blocks_to_run() -> None:
    assert len([page for page in PAGES if _runs_python(page)]) >= 8


RUNNABLE = [p for p in PAGES if _runs_python(p)]


@pytest.fixture(scope="module")
def page_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[Path, tuple[subprocess.Popen[bytes], Path]]]:
    """Every runnable page, started at once in its own process and empty directory.

    Most of a page's run is starting Python and importing; side by side they
    take a fraction of the time they would one after the other.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["PYTHONPATH"] = str(ROOT)
    runs = {}
    for page in RUNNABLE:
        cwd = tmp_path_factory.mktemp(page.stem)
        output = cwd / "output.txt"
        with output.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(RUNNER), str(page)],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        runs[page] = (proc, output)
    yield runs
    for proc, _ in runs.values():
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("page", RUNNABLE, ids=_page_id)
def test_page_runs(page: Path, page_runs: dict[Path, tuple[subprocess.Popen[bytes], Path]]) -> None:
    """The page's Python blocks run in order in a fresh process, in an empty directory."""
    proc, output = page_runs[page]
    returncode = proc.wait(timeout=120)
    assert returncode == 0, output.read_text()


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_blocks_are_well_formed(page: Path) -> None:
    """Markers have reasons and mark a block; included files exist and are run by tests."""
    for block in read_blocks(page):  # raises on a dangling or empty marker
        for include in block.includes:
            path = include.split(":", 1)[0]
            assert path.startswith(INCLUDABLE), f"{block.where()}: includes {path}"
            assert (ROOT / path).is_file(), f"{block.where()}: {path} does not exist"


def test_not_runnable_reasons_are_few_and_known() -> None:
    """Everything not run is waiting for another branch, or is not a program at all."""
    reasons = {
        block.not_runnable
        for page in PAGES
        for block in read_blocks(page)
        if block.is_python and block.not_runnable is not None
    }
    assert reasons <= {
        "needs the CLI/PostgreSQL branch",
        "runs until stopped by a signal; examples/graceful_shutdown.py is its tested twin",
    }, reasons


# ------------------------------------------------------------ reference pages


def _default(field: attrs.Attribute) -> str:  # type: ignore[type-arg]
    value = field.default
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Path):
        return str(value)
    if value is None:
        return ""
    return str(value)


def test_the_environment_page_lists_every_setting_with_its_default() -> None:
    text = (DOCS / "reference" / "environment.md").read_text()
    rows = dict(re.findall(r"^\| `(OMNIQ_[A-Z_]+)` \| `([^`]*)` \|", text, flags=re.MULTILINE))
    fields = {ENV_PREFIX + f.name.upper(): f for f in attrs.fields(Settings)}
    assert set(rows) - {"OMNIQ_TEST_POSTGRES_DSN"} == set(fields)
    for name, field in fields.items():
        documented = rows[name]
        # a number may be written with digit separators: 86_400 reads better than 86400
        assert documented.replace("_", "") == _default(field).replace("_", "") or (
            isinstance(field.default, float) and float(documented) == field.default
        ), f"{name}: the page says {documented!r}, Settings says {field.default!r}"
