"""Every Python block of docs/ and the README runs (or says why not); references are complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from omniq_trio.config import ENV_PREFIX, Settings
from tests.conftest import POSTGRES_DSN, ROOT
from tests.docs._blocks import Block, read_blocks

DOCS = ROOT / "docs"
#: the site's pages, and the README, whose blocks are held to the same rules
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
RUNNER = Path(__file__).with_name("_run_page.py")
#: where pages may include files from: each is run by a test of its own
INCLUDABLE = ("examples/",)


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _runs(block: Block, *, postgres: bool) -> bool:
    return (
        block.is_python
        and block.not_runnable is None
        and not block.includes
        and (block.requires != "postgres" or postgres)
    )


def _runs_python(page: Path, *, postgres: bool = POSTGRES_DSN is not None) -> bool:
    return any(_runs(b, postgres=postgres) for b in read_blocks(page))


def _needs_postgres(page: Path) -> bool:
    return any(_runs(b, postgres=True) and b.requires == "postgres" for b in read_blocks(page))


def test_there_are_pages_with_blocks_to_run() -> None:
    assert len([page for page in PAGES if _runs_python(page, postgres=False)]) >= 12
    assert len([page for page in PAGES if _needs_postgres(page)]) >= 2


RUNNABLE = [p for p in PAGES if _runs_python(p)]


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def page_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[Path, tuple[subprocess.Popen[bytes], Path]]]:
    """Every runnable page, started at once in its own process and empty directory.

    Most of a page's run is starting Python and importing; side by side they
    take a fraction of the time they would one after the other. A page with
    PostgreSQL blocks gets a schema of its own, dropped afterwards.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["PYTHONPATH"] = str(ROOT)
    runs = {}
    schemas = []
    for page in RUNNABLE:
        cwd = tmp_path_factory.mktemp(page.stem)
        output = cwd / "output.txt"
        command = [sys.executable, str(RUNNER), str(page)]
        if POSTGRES_DSN and _needs_postgres(page):
            schemas.append(f"docs_{uuid.uuid4().hex[:10]}")
            command += ["--postgres", POSTGRES_DSN, schemas[-1]]
        with output.open("wb") as out:
            proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        runs[page] = (proc, output)
    yield runs
    for proc, _ in runs.values():
        proc.kill()
        proc.wait()
    for schema in schemas:
        assert POSTGRES_DSN
        _drop_schema(POSTGRES_DSN, schema)


@pytest.mark.parametrize("page", RUNNABLE, ids=_page_id)
def test_page_runs(page: Path, page_runs: dict[Path, tuple[subprocess.Popen[bytes], Path]]) -> None:
    """The page's Python blocks run in order in a fresh process, in an empty directory."""
    proc, output = page_runs[page]
    returncode = proc.wait(timeout=120)
    assert returncode == 0, output.read_text()


TEST_MODULES = [
    (page, block.file)
    for page in PAGES
    for block in read_blocks(page)
    if block.file is not None and Path(block.file).name.startswith("test_")
]


@pytest.mark.parametrize(
    ("page", "module"), TEST_MODULES, ids=[f"{_page_id(p)}:{m}" for p, m in TEST_MODULES]
)
def test_test_modules_a_page_saves_pass_under_pytest(
    page: Path, module: str, page_runs: dict[Path, tuple[subprocess.Popen[bytes], Path]]
) -> None:
    """A test the reader is asked to save passes when run as the page says, next to its files."""
    proc, output = page_runs[page]
    assert proc.wait(timeout=120) == 0, output.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", module],
        cwd=output.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_blocks_are_well_formed(page: Path) -> None:
    """Markers have reasons and mark a block; included files exist and are run by tests."""
    for block in read_blocks(page):  # raises on a dangling or empty marker
        for include in block.includes:
            path = include.split(":", 1)[0]
            assert path.startswith(INCLUDABLE), f"{block.where()}: includes {path}"
            assert (ROOT / path).is_file(), f"{block.where()}: {path} does not exist"
        if block.requires is not None or block.send is not None:
            assert block.is_python and block.file is None, f"{block.where()}: runs no Python"


#: Why a Python block may be marked not runnable. None so far: a block that
#: needs a server is marked ``requires:``, one that runs until Ctrl-C ``send:``.
#: A lasting reason names the test that stands in for the block; "waiting for
#: another branch" is not one.
LASTING_REASONS: frozenset[str] = frozenset()


def test_not_runnable_reasons_are_few_and_known() -> None:
    reasons = {
        block.not_runnable
        for page in PAGES
        for block in read_blocks(page)
        if block.is_python and block.not_runnable is not None
    }
    assert reasons <= LASTING_REASONS, reasons


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
