"""Logistic regression by Newton / IRLS passes, each solved by a QR merge (RevoScaleR's rxLogit)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparkdist.errors import EmptyDataError, InvalidArgumentError
from sparkdist.pema._model import (
    RegressionResult,
    check_terms,
    design,
    inverse_rtr_diagonal,
    one_blas_thread,
    solve_upper,
    term_names,
)
from sparkdist.pema._numerics import QRAccumulator, collinear
from sparkdist.pema.base import DataInfo, PemaAlgorithm


@dataclass
class LogisticRegressionResult(RegressionResult):
    """Adds the deviance, the number of passes and whether they converged."""

    deviance: float
    iterations: int
    converged: bool


class LogisticRegression(PemaAlgorithm[LogisticRegressionResult]):
    """Logistic regression of a 0/1 column ``y`` on the columns ``x``.

    Each pass is one Newton step: the weighted least-squares problem of IRLS is accumulated as an
    R factor (merged by QR), then solved on the driver. Passes stop when the relative change of the
    deviance is below ``tol``, or after ``max_iters``.

    >>> import numpy as np, pandas as pd
    >>> from sparkdist.pema import pema_compute
    >>> df = pd.DataFrame({"x": [0, 1, 2, 3, 4, 5.0], "y": [0, 0, 1, 0, 1, 1]})
    >>> fit = pema_compute(LogisticRegression("y", ["x"]), df)
    >>> fit.converged, fit.coefficients.round(4).tolist()
    (True, [-3.0351, 1.214])
    """

    requires_values = True

    def __init__(
        self, y: str, x: Sequence[str], intercept: bool = True, max_iters: int = 25, tol: float = 1e-10
    ) -> None:
        self.x = check_terms("LogisticRegression", y, x, intercept)
        if not isinstance(max_iters, int) or isinstance(max_iters, bool) or max_iters < 1:
            raise InvalidArgumentError(f"LogisticRegression(max_iters=...) must be a positive int, got {max_iters!r}")
        if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not tol > 0:
            raise InvalidArgumentError(f"LogisticRegression(tol=...) must be a positive number, got {tol!r}")
        self.y, self.intercept, self.max_iters, self.tol = y, intercept, max_iters, float(tol)
        self.initialize()

    def vars_to_use(self) -> list[str]:
        return list(dict.fromkeys([*self.x, self.y]))

    def check_data(self, info: DataInfo) -> None:
        info.require_numeric(self.vars_to_use(), "LogisticRegression")
        if info.frame is not None and self.y in info.frame.columns:  # in-memory data: check before any pass
            ys = info.frame[self.y].to_numpy(dtype=np.float64, na_value=np.nan)
            bad = ys[~((ys == 0.0) | (ys == 1.0) | np.isnan(ys))]
            if len(bad):
                raise InvalidArgumentError(_not_binary(self.y, len(bad), np.unique(bad)[:_SHOWN].tolist()))

    def initialize(self) -> None:
        self.beta = np.zeros(len(self.x) + int(self.intercept))
        self.deviance = np.inf
        self.previous_deviance = np.inf
        self.iterations = 0
        self.initialize_iteration()

    def initialize_iteration(self) -> None:
        self.qr = QRAccumulator(len(self.beta) + 1)
        self.pass_deviance = 0.0
        # rows on the wrong side of (or on) the hyperplane x·beta = 0, and rows fitted at p = 0 or 1
        self.misclassified = 0
        self.saturated = 0
        self.bad_values: list[float] = []  # a few response values other than 0 and 1
        self.bad_rows = 0

    def process_data(self, chunk: pd.DataFrame) -> None:
        xs, ys = design(chunk, self.y, self.x, self.intercept)
        valid = (ys == 0.0) | (ys == 1.0)
        if not valid.all():  # answered on the driver, with the values, by process_results
            self.bad_rows += int((~valid).sum())
            self.bad_values = sorted(set(self.bad_values) | set(np.unique(ys[~valid])[:_SHOWN].tolist()))[:_SHOWN]
            return
        if not len(ys):
            return
        eta = xs @ self.beta
        positive = ys == 1.0
        self.misclassified += int(np.count_nonzero(np.where(positive, eta <= 0.0, eta >= 0.0)))
        self.saturated += int(np.count_nonzero(np.abs(eta) > _SATURATED))
        with np.errstate(over="ignore"):  # e^-eta = inf gives p = 0, as it should
            p = 1.0 / (1.0 + np.exp(-eta))
        np.clip(p, 1e-15, 1 - 1e-15, out=p)
        sw = np.sqrt(p * (1.0 - p))
        # weighted least squares of the working response z = eta + (y - p) / w, rows scaled by sqrt(w);
        # built column by column (Fortran order, as LAPACK's QR wants it: no copy)
        k = xs.shape[1]
        a = np.empty((len(ys), k + 1), order="F")
        np.multiply(xs, sw[:, None], out=a[:, :k])
        np.multiply(sw, eta, out=a[:, k])
        a[:, k] += (ys - p) / sw
        part = QRAccumulator(k + 1)
        with one_blas_thread():
            part.r = np.asarray(np.linalg.qr(a, mode="r"))
        part.rows = len(ys)
        self.qr.merge(part)
        # deviance -2 log L = 2 sum(log(1 + e^eta) - y eta), exact also where p was clipped
        self.pass_deviance += 2.0 * float(np.logaddexp(0.0, eta).sum() - eta[positive].sum())

    def update_results(self, other: LogisticRegression) -> None:
        self.qr.merge(other.qr)
        self.pass_deviance += other.pass_deviance
        self.misclassified += other.misclassified
        self.saturated += other.saturated
        self.bad_rows += other.bad_rows
        self.bad_values = sorted(set(self.bad_values) | set(other.bad_values))[:_SHOWN]

    def process_results(self) -> LogisticRegressionResult:
        names = term_names(self.x, self.intercept)
        k = len(names)
        if self.bad_rows:
            raise InvalidArgumentError(_not_binary(self.y, self.bad_rows, self.bad_values))
        if self.qr.rows == 0:
            raise EmptyDataError(f"LogisticRegression: no complete rows in columns {self.vars_to_use()}")
        if self.iterations and self.misclassified == 0:
            raise InvalidArgumentError(_separated(self.y, names, self.beta))
        r = self.qr.square()
        bad = collinear(r[:k, :k], names)
        if bad:
            raise InvalidArgumentError(
                "LogisticRegression: the design is singular: "
                + "; ".join(f"'{c}' is a linear combination of {before}" for c, before in bad)
            )
        self.previous_deviance, self.deviance = self.deviance, self.pass_deviance
        self.cov_diagonal = inverse_rtr_diagonal(r[:k, :k])  # at the beta of this pass
        self.beta = solve_upper(r[:k, :k], r[:k, k])
        self.iterations += 1
        converged = self.has_converged()
        if self.saturated and (converged or self.iterations >= self.max_iters):
            warnings.warn(_quasi_separated(self.y, self.saturated, self.qr.rows), SeparationWarning, stacklevel=2)
        se = np.sqrt(self.cov_diagonal)
        index = pd.Index(names)
        return LogisticRegressionResult(
            coefficients=pd.Series(self.beta.copy(), index=index),
            std_errors=pd.Series(se, index=index),
            t_values=pd.Series(self.beta / se, index=index),
            n=int(self.qr.rows),
            df_residual=int(self.qr.rows - k),
            deviance=float(self.deviance),
            iterations=self.iterations,
            converged=converged,
        )

    def has_converged(self) -> bool:
        if not np.isfinite(self.previous_deviance):
            return False
        return abs(self.deviance - self.previous_deviance) / (abs(self.deviance) + 0.1) < self.tol


#: How many offending response values an error shows.
_SHOWN = 5
#: |x·beta| beyond which a fitted probability is 0 or 1 to double precision (1 / (1 + e^37) < 2^-53).
_SATURATED = 37.0


class SeparationWarning(RuntimeWarning):
    """Some rows are fitted with probability 0 or 1: the response is (quasi-)separated by the predictors,
    and the coefficients of the separating direction are not identified (statsmodels'
    ``PerfectSeparationWarning``)."""


def _not_binary(y: str, rows: int, values: list[float]) -> str:
    shown = ", ".join(f"{v:g}" for v in values)
    return (
        f"LogisticRegression: the response '{y}' must hold only 0 and 1 (or False and True); {rows:,} rows hold "
        f"other values (smallest: {shown}). Recode it, e.g. as (column == level) for one level of a category"
    )


def _separated(y: str, names: list[str], beta: np.ndarray) -> str:
    plane = " + ".join(f"{b:.4g}*{n}" if n != "(Intercept)" else f"{b:.4g}" for n, b in zip(names, beta, strict=True))
    return (
        f"LogisticRegression: perfect separation: {plane} is > 0 on every row with {y} = 1 and < 0 on every row "
        f"with {y} = 0, so the maximum-likelihood coefficients do not exist (they grow without bound). "
        "Remove or combine the predictors that separate the classes, or use a penalized model"
    )


def _quasi_separated(y: str, rows: int, total: int) -> str:
    return (
        f"LogisticRegression: quasi-separation: {rows:,} of {total:,} rows are fitted with probability 0 or 1 "
        f"(|x·beta| > {_SATURATED:g}): some predictors separate part of '{y}', and their coefficients may not be "
        "identified (they grow with every pass)"
    )
