"""Griffe extension for the API reference: Sphinx roles in docstrings as Markdown code.

progface's docstrings name objects the Sphinx way (``:class:`~progface.x.Y```, ``:func:`f```).
mkdocstrings renders Markdown, where such a role would show literally; this turns each into a
code span (``~`` keeps the last name only, as in Sphinx).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc|const):`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``text`` with every Sphinx role replaced by a code span."""

    def code(match: re.Match) -> str:
        short, target = match.groups()
        return f"`{target.rsplit('.', 1)[-1] if short else target}`"

    return ROLE.sub(code, text)


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
