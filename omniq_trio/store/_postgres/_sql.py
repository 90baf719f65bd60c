"""The statements the PostgreSQL store runs, loaded by name from ``queries.sql``.

Every statement lives in ``queries.sql`` under a ``-- name:`` header, with
the reasoning behind it (generic plans, the indexes it reads); this module
only reads the file and puts this store's schema, channel and token in:

* ``{schema}``: the schema, as a quoted identifier (``PostgresStore`` accepts
  lower-case identifiers only, so it needs no escaping beyond the quotes);
* ``{channel}``: the NOTIFY channel, as a string literal (quotes doubled);
* ``{token}``: this store's random hex mark on its notifications;
* ``{name}`` of a ``-- fragment: name`` (the task columns, in field order).

Any other brace (JSON and array literals) is left as written. The text a
Python string still holds is the schema's DDL (``_schema``: versioned
migrations, not statements run by name) and, here, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Final, final

import attrs

from ._wire import Statement

__all__ = ["CHANGE_CODES", "Statements", "load_queries", "psycopg_sql"]

#: Letters a notification's payload starts with: what changed (``Change`` values).
CHANGE_CODES: Final = {"work": "w", "finished": "f", "cancelled": "c"}

_HEADER: Final = re.compile(r"^-- (name|fragment): (\w+)\s*$", re.MULTILINE)
_PLACEHOLDER: Final = re.compile(r"\{(\w+)\}")


@cache
def load_queries() -> tuple[Mapping[str, str], Mapping[str, str]]:
    """The statements and fragments of ``queries.sql`` by name, comments removed."""
    text = files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    statements: dict[str, str] = {}
    fragments: dict[str, str] = {}
    parts = _HEADER.split(text)
    # parts: [preamble, kind, name, body, kind, name, body, ...]
    for kind, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        sql = " ".join(" ".join(lines).split())
        target = statements if kind == "name" else fragments
        if name in statements or name in fragments:
            raise ValueError(f"queries.sql: {name!r} is defined twice")
        target[name] = sql
    return statements, fragments


def _substitute(sql: str, values: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(value, sql)


def psycopg_sql(sql: str) -> str:
    """A statement written with ``$1``, ``$2``, ... placeholders (each once, in order)
    in psycopg's ``%s`` style, for running on a caller's psycopg connection."""
    text = sql.replace("%", "%%")
    numbers = [int(n) for n in re.findall(r"\$(\d+)", text)]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError("the statement's parameters are not $1, $2, ... each once, in order")
    return re.sub(r"\$\d+", "%s", text)


@final
@attrs.frozen
class Statements:
    """Every statement of ``queries.sql``, for the tables in one schema, notifying on
    one channel with one token."""

    by_name: Mapping[str, Statement]

    def __getattr__(self, name: str) -> Statement:
        try:
            return self.by_name[name]
        except KeyError:
            raise AttributeError(name) from None

    def all(self) -> tuple[Statement, ...]:
        """Every statement, for preparing on a new connection."""
        return tuple(self.by_name.values())

    @classmethod
    def build(cls, schema: str, channel: str, token: str) -> Statements:
        """Statements on ``schema``'s tables; ``token`` marks this store's notifications."""
        if '"' in schema or not schema.isidentifier() or not re.fullmatch(r"\w+", token):
            raise ValueError(f"unsafe schema {schema!r} or token {token!r}")
        statements, fragments = load_queries()
        values = {
            "schema": f'"{schema}"',
            "channel": "'" + channel.replace("'", "''") + "'",
            "token": token,
        }
        values.update({name: _substitute(text, values) for name, text in fragments.items()})
        return cls(
            {
                name: Statement(f"omniq_{name}".encode(), _substitute(text, values).encode())
                for name, text in statements.items()
            }
        )
