"""A griffe extension for the API reference: the Sphinx roles of sparkdist's docstrings
(:class:`sparkdist.Job`, :func:`task_rng`, :meth:`cancel`...) become code in the rendered pages, and
those naming a ``sparkdist.`` object by its full path become links to its entry (mkdocs --strict fails
when such an entry does not exist)."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|data|exc|mod|obj):`~?([^`]+)`")


def _replace(match: re.Match[str]) -> str:
    target = match.group(1)
    if target.startswith("sparkdist."):
        return f"[`{target.rsplit('.', 1)[-1]}`][{target}]"
    return f"`{target}`"


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring once, as griffe loads the object."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_replace, obj.docstring.value)
