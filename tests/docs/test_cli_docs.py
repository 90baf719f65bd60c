"""The command line as documented is the command line as built: nothing missing, nothing made up.

The reference page names every command, option and ``OMNIQ_*`` variable
argparse knows. Every ``omniq-trio`` command line in a shell block of the docs
or the README parses with the real parser, and every command there that sets
``OMNIQ_*`` variables sets valid ones and reaches the store it names (a DSN
with the file backend would be the slip). Nothing is run: the CLI's own
tests run it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from omniq_trio._cli._main import parser as _parser
from omniq_trio._cli._main import settings as _settings
from omniq_trio.config import ENV_PREFIX, Settings
from tests.docs._blocks import read_blocks
from tests.docs.test_docs import PAGES, _page_id

CLI_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"
SHELL = ("sh", "bash", "shell", "console")
#: how a command line starts the CLI
PROGRAMS = (["omniq-trio"], ["python", "-m", "omniq_trio"], ["python3", "-m", "omniq_trio"])
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def _commands() -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = (
        a
        for a in _parser()._actions  # argparse keeps no public list of its subcommands
        if isinstance(a, argparse._SubParsersAction)
    )
    return dict(subparsers.choices)


def _section(text: str, command: str) -> str:
    """The part of the page under the heading that names ``command``."""
    found = re.search(rf"^##+ .*`{command}`.*$", text, flags=re.MULTILINE)
    assert found, f"no heading names `{command}`"
    end = re.search(r"^## ", text[found.end() :], flags=re.MULTILINE)
    return text[found.start() : found.end() + end.start() if end else len(text)]


def test_the_reference_documents_every_command_option_and_variable() -> None:
    text = CLI_PAGE.read_text()
    for name, command in _commands().items():
        section = _section(text, name)
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                # options every command shares are documented once, at the top
                where = text if option in ("--backend", "--base-dir", "--dsn") else section
                assert f"`{option}" in where, f"{name} {option} is not documented"
            for variable in re.findall(r"OMNIQ_[A-Z_]+", action.help or ""):
                assert f"`{variable}`" in text, f"{name}: {variable} is not documented"
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^\| {code} \|", text, flags=re.MULTILINE), f"exit code {code}"


def _command_lines(page: Path) -> Iterator[tuple[str, dict[str, str], list[str] | None]]:
    """``(where, env, argv)`` of every command in the page's shell blocks that sets
    ``OMNIQ_*`` variables or runs the CLI (``argv`` is ``None`` for other programs)."""
    for block in read_blocks(page):
        if block.lang not in SHELL:
            continue
        for line in block.code.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            # one command at a time: `a | b`, `a && b`, `a; b`
            segment: list[str] = []
            for word in [*words, ";"]:
                if word not in ("|", "||", "&&", ";", "&"):
                    segment.append(word)
                    continue
                where = f"{_page_id(page)}:{block.line}: {shlex.join(segment)}"
                env = {}
                while segment and _ENV.match(segment[0]):
                    name, _, value = segment.pop(0).partition("=")
                    env[name] = value
                for program in PROGRAMS:
                    n = len(program)
                    if [Path(w).name for w in segment[:1]] + segment[1:n] == program:
                        yield where, env, segment[n:]
                        break
                else:
                    if any(name.startswith(ENV_PREFIX) for name in env):
                        yield where, env, None
                segment = []


CASES = [case for page in PAGES for case in _command_lines(page)]


def test_the_docs_run_the_cli() -> None:
    pages = {where.split(":")[0] for where, _, argv in CASES if argv is not None}
    assert len(CASES) >= 20 and len(pages) >= 6, pages


@pytest.mark.parametrize(("where", "env", "argv"), CASES, ids=[w for w, _, _ in CASES])
def test_every_documented_command_line_works(
    where: str,
    env: dict[str, str],
    argv: list[str] | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It parses, its variables are settings, and it reaches the store it means to."""
    for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if argv is None:
        settings = Settings.from_env()
    else:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version exit 0
            assert exc.code == 0, f"{where}\n{capsys.readouterr().err}"
            return
        settings = _settings(args)
    if settings.dsn is not None:
        assert settings.backend == "postgres", f"{where}: a DSN, but the {settings.backend} backend"
