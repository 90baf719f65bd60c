"""The ``omniq-trio`` parser, built from a table of :class:`Command` entries.

A command is one :class:`Command` (name, the function that runs it, its help
and its options) in :data:`omniq_trio._cli._table.COMMANDS`; the parser,
the ``--help`` pages and the Settings overrides all come from that table.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import attrs

from ..config import Settings

__all__ = ["Command", "ExtendCommaSeparated", "Option", "build_parser", "option", "walk"]

#: What runs a command: the parsed arguments and the settings in, the exit code out.
Run = Callable[[argparse.Namespace, Settings], int]


@attrs.frozen
class Option:
    """One argument of a command: ``add_argument(*names, **kwargs)``.

    ``setting`` marks an option whose value is the :class:`Settings` field of
    the same name (its ``dest``), passed to :meth:`Settings.from_env` as an
    override when given.
    """

    names: tuple[str, ...]
    kwargs: Mapping[str, Any]
    setting: bool = False

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments that holds the value."""
        if "dest" in self.kwargs:
            return str(self.kwargs["dest"])
        longest = max(self.names, key=len)
        return longest.lstrip("-").replace("-", "_")


def option(*names: str, setting: bool = False, **kwargs: Any) -> Option:
    """An :class:`Option`, written as a call to ``add_argument`` is."""
    return Option(names, kwargs, setting)


@attrs.frozen
class Command:
    """One ``omniq-trio`` command: its name, what runs it, its help and its options.

    A command with ``subcommands`` (``omniq-trio queues pause NAME``) runs its
    own ``run`` when none is given, or asks for one if it has no ``run``.
    """

    name: str
    run: Run | None
    summary: str
    examples: Sequence[str]
    options: Sequence[Option] = ()
    subcommands: Sequence[Command] = ()
    #: Said after the examples in ``--help``.
    notes: str = ""

    @property
    def epilog(self) -> str:
        """The end of the command's ``--help``: its examples, then its notes."""
        lines = "".join(f"  {line}\n" for line in self.examples)
        notes = f"{self.notes}\n" if self.notes else ""
        return f"examples:\n{lines}{notes}"


class ExtendCommaSeparated(argparse.Action):
    """A repeatable option whose values may be comma-separated: ``--import a,b --import c``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        parts = [part.strip() for part in str(values).split(",") if part.strip()]
        setattr(namespace, self.dest, (*(getattr(namespace, self.dest, None) or ()), *parts))


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2 (argparse prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add(parser: argparse._ActionsContainer, options: Sequence[Option]) -> None:
    for spec in options:
        kwargs = dict(spec.kwargs)
        if spec.setting and spec.names[0].startswith("-"):
            # absent, the attribute is not set at all: a subcommand's parser then
            # leaves what its parent parsed alone (`queues --dsn X pause NAME`)
            kwargs.setdefault("default", argparse.SUPPRESS)
        parser.add_argument(*spec.names, **kwargs)


def _add_commands(
    parser: argparse.ArgumentParser,
    commands: Sequence[Command],
    shared: argparse.ArgumentParser,
    path: tuple[str, ...],
    *,
    required: bool,
) -> None:
    # the top-level name stays in `command`, as argparse users expect; a full
    # name (`queues pause`) goes to `cli_name`
    dest = {} if path else {"dest": "command"}
    subparsers = parser.add_subparsers(metavar="COMMAND", required=required, **dest)
    for command in commands:
        sub = subparsers.add_parser(
            command.name,
            help=command.summary,
            description=command.summary,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[shared],
        )
        _add(sub, command.options)
        sub.set_defaults(cli_command=command, cli_name=" ".join((*path, command.name)))
        if command.subcommands:
            _add_commands(
                sub, command.subcommands, shared, (*path, command.name), required=not command.run
            )


def build_parser(
    *,
    description: str,
    epilog: str,
    version: str,
    shared: Sequence[tuple[str, Sequence[Option]]],
    commands: Sequence[Command],
) -> argparse.ArgumentParser:
    """The parser of ``commands``; every command also takes the ``shared`` option groups."""
    parser = _Parser(
        prog="omniq-trio",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version)
    parent = argparse.ArgumentParser(add_help=False)
    for title, options in shared:
        _add(parent.add_argument_group(title), options)
    _add_commands(parser, commands, parent, (), required=True)
    return parser


def walk(commands: Sequence[Command]) -> Iterator[Command]:
    """Every command of the table, subcommands included."""
    for command in commands:
        yield command
        yield from walk(command.subcommands)
