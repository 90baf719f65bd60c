"""A griffe extension: ``#:`` comments above an attribute become its docstring.

omniq_trio documents fields the way Sphinx reads them (``#: Where tasks
live ...`` above ``backend: Backend = ...``); griffe only reads docstrings
below attributes, so without this the reference would show fields bare.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe


class CommentDocstrings(griffe.Extension):
    def on_attribute_instance(
        self, *, node: ast.AST | griffe.ObjectNode, attr: griffe.Attribute, **kwargs: Any
    ) -> None:
        if attr.docstring is not None or not isinstance(node, ast.AST):
            return
        lineno = getattr(node, "lineno", None)
        try:
            lines = attr.lines_collection[attr.filepath]  # the whole file's lines
        except (KeyError, TypeError, AttributeError):
            return
        if not lineno or not lines:
            return
        comment: list[str] = []
        i = lineno - 2  # the line above, 0-based
        while i >= 0 and lines[i].strip().startswith("#:"):
            comment.insert(0, lines[i].strip()[2:].strip())
            i -= 1
        if comment:
            attr.docstring = griffe.Docstring(" ".join(comment), parent=attr)
