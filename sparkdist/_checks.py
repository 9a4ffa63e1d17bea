"""Argument checks, one message style: the argument's name, what was given, what is expected.

>>> check_positive_int(0, "times_to_run")
Traceback (most recent call last):
...
sparkdist.errors.InvalidArgumentError: times_to_run must be a positive int, got 0
>>> name_of(len), name_of(lambda: 0)
('len', '<lambda>')
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

from sparkdist.errors import ArgumentTypeError, ColumnNotFoundError, InvalidArgumentError

__all__ = [
    "check_bool",
    "check_callable",
    "check_columns",
    "check_optional_bool",
    "check_positive_int",
    "check_positive_number",
    "check_str",
    "name_of",
]


def name_of(func: Any) -> str:
    """A function's name for messages: its qualified name, else its name, else its type's name."""
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__name__)


def check_seed(value: Any, arg: str = "rng_seed") -> int | None:
    """A random seed: any int (negative ones too, as R takes them) or None.

    >>> check_seed(-3), check_seed(None)
    (-3, None)
    """
    if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
        raise ArgumentTypeError(f"{arg} must be an int or None, got {type(value).__name__}: {value!r}")
    return None if value is None else int(value)


def check_bool(value: Any, arg: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{arg} must be True or False, got {value!r}")
    return value


def check_optional_bool(value: Any, arg: str, none_means: str = "") -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ArgumentTypeError(f"{arg} must be True, False or None{none_means}, got {value!r}")
    return value


def check_positive_int(value: Any, arg: str, *, optional: bool = True, hint: str = "") -> int | None:
    """A positive int (numpy ints too; bools are not ints here); None passes when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"{arg} must be a positive int{hint}, got {value!r}")
    return int(value)


def check_callable(value: Any, arg: str, *, optional: bool = False) -> Callable[..., Any] | None:
    if value is None and optional:
        return None
    if not callable(value):
        expected = "callable or None" if optional else "callable"
        raise ArgumentTypeError(f"{arg} must be {expected}, got {type(value).__name__}: {value!r}")
    return value  # type: ignore[no-any-return]


def check_str(value: Any, arg: str) -> str:
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(f"{arg} must be a non-empty str, got {value!r}")
    return value


def check_columns(columns: Any, available: Sequence[str], arg: str = "columns") -> tuple[str, ...] | None:
    """``columns`` as a tuple after checking it is a list of names found in ``available``."""
    if columns is None:
        return None
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not all(isinstance(c, str) for c in columns):
        raise ArgumentTypeError(f"{arg} must be a list of column names (str), got {columns!r}")
    missing = [c for c in columns if c not in available]
    if missing:
        raise ColumnNotFoundError(f"{arg} {missing} are not in the data; available columns: {list(available)}")
    return tuple(columns)


def check_positive_number(value: Any, arg: str, *, hint: str = "") -> float:
    """A positive, finite int or float (numpy numbers too; bools are not numbers here), e.g. seconds.

    >>> check_positive_number(0.5, "timeout"), check_positive_number(30, "timeout")
    (0.5, 30.0)
    >>> check_positive_number("30", "timeout", hint=" of seconds")
    Traceback (most recent call last):
    ...
    sparkdist.errors.ArgumentTypeError: timeout must be a positive number of seconds, got str: '30'
    """
    import math

    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ArgumentTypeError(f"{arg} must be a positive number{hint}, got {type(value).__name__}: {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{arg} must be a positive, finite number{hint}, got {value!r}")
    return float(value)
