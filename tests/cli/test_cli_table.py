"""The parser built from a command table: what a new command gets by being one entry."""

from __future__ import annotations

import argparse
import importlib.metadata

import pytest

import omniq_trio
from omniq_trio._cli import main
from omniq_trio._cli._spec import Command, ExtendCommaSeparated, build_parser, option
from omniq_trio.config import Settings


def _noop(args: argparse.Namespace, settings: Settings) -> int:
    return 0


SHARED = (("store", (option("--dsn", setting=True), option("--base-dir", setting=True))),)
TABLE = (
    Command(
        "queues",
        _noop,
        "List queues.",
        ("omniq-trio queues",),
        subcommands=(
            Command(
                "pause",
                _noop,
                "Pause a queue.",
                ("omniq-trio queues pause emails",),
                (option("name", metavar="NAME"),),
                notes="Workers stop claiming from it.",
            ),
        ),
    ),
    Command("schedules", None, "Schedules.", (), subcommands=(Command("list", _noop, "L.", ()),)),
    Command(
        "worker",
        _noop,
        "Run.",
        (),
        (option("--import", dest="imports", setting=True, action=ExtendCommaSeparated),),
    ),
)


def parse(*argv: str) -> argparse.Namespace:
    parser = build_parser(description="d", epilog="e", version="v", shared=SHARED, commands=TABLE)
    return parser.parse_args(argv)


def test_a_command_and_its_subcommands_are_parsed_with_their_full_name() -> None:
    args = parse("queues")
    assert (args.cli_name, args.cli_command.name) == ("queues", "queues")
    args = parse("queues", "pause", "emails")
    assert (args.cli_name, args.name) == ("queues pause", "emails")
    assert args.cli_command is TABLE[0].subcommands[0]


def test_shared_options_given_before_a_subcommand_are_kept() -> None:
    args = parse("queues", "--dsn", "postgresql://db/app", "pause", "emails")
    assert args.dsn == "postgresql://db/app"
    args = parse("queues", "pause", "emails", "--dsn", "postgresql://db/other")
    assert args.dsn == "postgresql://db/other"
    assert not hasattr(parse("queues", "pause", "emails"), "dsn")  # absent: not an override


def test_a_group_without_its_own_run_needs_a_subcommand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse("schedules")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("omniq-trio schedules: error: ") and err.count("\n") == 1
    assert parse("schedules", "list").cli_name == "schedules list"


def test_help_shows_examples_then_notes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("queues", "pause", "--help")
    out = capsys.readouterr().out
    assert out.endswith(
        "examples:\n  omniq-trio queues pause emails\nWorkers stop claiming from it.\n"
    )


def test_comma_separated_values_extend_a_repeated_option() -> None:
    args = parse("worker", "--import", "a, b,", "--import", "c")
    assert args.imports == ("a", "b", "c")


def test_the_version_is_written_once(capsys: pytest.CaptureFixture[str]) -> None:
    """pyproject.toml reads ``omniq_trio.__version__``: the installed metadata agrees."""
    assert importlib.metadata.version("omniq-trio") == omniq_trio.__version__
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"omniq-trio {omniq_trio.__version__}\n"
