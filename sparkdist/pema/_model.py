"""Shared pieces of the regression models: argument checks, design matrices, result tables."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from sparkdist.errors import ArgumentTypeError


def check_terms(model: str, y: str, x: Sequence[str], intercept: bool) -> list[str]:
    if not isinstance(y, str):
        raise ArgumentTypeError(f"{model}(y=...) must be a column name (str), got {y!r}")
    if isinstance(x, str) or not isinstance(x, Sequence) or not x or not all(isinstance(c, str) for c in x):
        raise ArgumentTypeError(f"{model}(x=...) must be a non-empty list of column names, got {x!r}")
    if not isinstance(intercept, bool):
        raise ArgumentTypeError(f"{model}(intercept=...) must be True or False, got {intercept!r}")
    return list(x)


def design(chunk: pd.DataFrame, y: str, x: list[str], intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of the chunk's complete rows (rows with a missing value are dropped)."""
    names = [*x, y]
    frame = chunk if list(chunk.columns) == names else chunk[names]  # as read: no copy of float64 columns
    values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values).any(axis=1)
    if missing.any():
        values = values[~missing]
    xs = values[:, :-1]
    if intercept:
        xs = np.column_stack([np.ones(len(xs)), xs])
    return xs, values[:, -1]


def term_names(x: list[str], intercept: bool) -> list[str]:
    return (["(Intercept)"] if intercept else []) + x


@dataclass
class RegressionResult:
    """Coefficients with their standard errors and t values, and fit statistics."""

    coefficients: pd.Series
    std_errors: pd.Series
    t_values: pd.Series
    n: int
    df_residual: int

    def table(self) -> pd.DataFrame:
        """Estimate, Std. Error and t value per term, like R's ``summary()``."""
        return cast(
            pd.DataFrame,
            pd.DataFrame({"Estimate": self.coefficients, "Std. Error": self.std_errors, "t value": self.t_values}),
        )


def solve_upper(r: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Back substitution for an upper-triangular system."""
    out = np.zeros_like(b, dtype=np.float64)
    for i in range(len(b) - 1, -1, -1):
        out[i] = (b[i] - r[i, i + 1 :] @ out[i + 1 :]) / r[i, i]
    return out


def inverse_rtr_diagonal(r: np.ndarray) -> np.ndarray:
    """diag((R'R)^-1) = row sums of squares of R^-1, without forming R'R."""
    rinv = solve_upper(r, np.eye(len(r)))
    return cast(np.ndarray, (rinv * rinv).sum(axis=1))


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS limited to one thread for a chunk's small matrix products (with threadpoolctl, when installed).

    Each task slot runs its own worker, so a multi-threaded BLAS would run more threads than cores:
    OpenBLAS is then an order of magnitude slower on an n x 8 by 8 x 8 product than with one thread.
    The previous limit is restored on exit.
    """
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")
