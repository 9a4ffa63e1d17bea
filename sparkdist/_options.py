"""Process-wide settings (``sparkdist.options``) and the ``sparkdist`` logger's account of a job's plan.

Progress bars: a call's own ``progress=`` wins; else ``options.progress``; else the environment
variable ``SPARKDIST_PROGRESS``; else bars show only in a terminal or a notebook.

>>> from sparkdist import options
>>> options.progress = False        # no progress bars in this process
>>> options.progress
False
>>> options.progress = None         # back to SPARKDIST_PROGRESS, else automatic
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sparkdist.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["PROGRESS_ENV", "Options", "log", "options"]

#: The logger sparkdist reports to; at DEBUG it tells what each job planned.
log = logging.getLogger("sparkdist")

#: Environment variable read when ``options.progress`` is None: 0/false/no/off, 1/true/yes/on, auto.
PROGRESS_ENV = "SPARKDIST_PROGRESS"
_WORDS = {
    **dict.fromkeys(("0", "false", "no", "off"), False),
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("", "auto"), None),
}


class Options:
    """sparkdist's process-wide settings, one attribute each (``sparkdist.options``).

    ``progress``
        Progress bars of waiting calls: False never shows them, True always does, None (the default)
        reads ``SPARKDIST_PROGRESS`` (``0``, ``1``, ``auto``) and otherwise shows them only in an
        interactive terminal or notebook. A call's own ``progress=`` argument wins over both.
    """

    def __init__(self) -> None:
        self._progress: bool | None = None

    @property
    def progress(self) -> bool | None:
        """True, False, or None (the environment decides; see the class docstring)."""
        if self._progress is not None:
            return self._progress
        return progress_from_env()

    @progress.setter
    def progress(self, value: bool | None) -> None:
        if value is not None and not isinstance(value, bool):
            raise ArgumentTypeError(f"sparkdist.options.progress must be True, False or None, got {value!r}")
        self._progress = value

    def __repr__(self) -> str:
        return f"sparkdist.options(progress={self.progress!r})"


def progress_from_env(raw: str | None = None) -> bool | None:
    """``SPARKDIST_PROGRESS`` (or ``raw`` in its place) as True, False or None (unset or ``auto``).

    >>> progress_from_env("0"), progress_from_env("Yes"), progress_from_env("auto")
    (False, True, None)
    >>> progress_from_env("sometimes")
    Traceback (most recent call last):
    ...
    sparkdist.errors.InvalidArgumentError: SPARKDIST_PROGRESS must be one of 0, 1, true, false, yes, no, on, off or auto; got 'sometimes'
    """
    if raw is None:
        raw = os.environ.get(PROGRESS_ENV)
    if raw is None:
        return None
    word = raw.strip().lower()
    if word not in _WORDS:
        raise InvalidArgumentError(
            f"{PROGRESS_ENV} must be one of 0, 1, true, false, yes, no, on, off or auto; got {raw!r}"
        )
    return _WORDS[word]


options = Options()


def debug(message: str, *args: Any) -> None:
    """Log at DEBUG on the ``sparkdist`` logger (the job's plan); nothing is formatted when it is off."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug(message, *args)
