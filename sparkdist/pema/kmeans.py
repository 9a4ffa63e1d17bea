"""k-means clustering by Lloyd passes (RevoScaleR's rxKmeans)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparkdist.errors import ArgumentTypeError, EmptyDataError, InvalidArgumentError
from sparkdist.pema._model import one_blas_thread
from sparkdist.pema.base import DataInfo, PemaAlgorithm


@dataclass
class KMeansResult:
    """Cluster centers (one row per cluster), sizes and within-cluster sums of squares."""

    centers: pd.DataFrame
    sizes: np.ndarray
    withinss: np.ndarray
    tot_withinss: float
    iterations: int
    converged: bool


class KMeans(PemaAlgorithm[KMeansResult]):
    """k-means of the rows of ``columns`` (rows with a missing value are left out).

    ``init`` gives the starting centers (k by len(columns)). Without it, the k rows with the
    smallest hash of ``(seed, row values)`` are taken in a first pass: a choice that does not
    depend on how the data is split. Passes stop when no center moves more than ``tol``.

    >>> import pandas as pd
    >>> from sparkdist.pema import pema_compute
    >>> df = pd.DataFrame({"a": [0.0, 0.1, 5.0, 5.1], "b": [0.0, 0.1, 5.0, 5.1]})
    >>> fit = pema_compute(KMeans(["a", "b"], 2, init=[[0, 0], [5, 5]]), df)
    >>> fit.centers.round(2).values.tolist(), fit.sizes.tolist()
    ([[0.05, 0.05], [5.05, 5.05]], [2, 2])
    """

    requires_values = True

    def __init__(
        self,
        columns: Sequence[str],
        k: int,
        init: Sequence[Sequence[float]] | np.ndarray | None = None,
        seed: int | None = None,
        max_iters: int = 50,
        tol: float = 1e-6,
    ) -> None:
        if isinstance(columns, str) or not columns or not all(isinstance(c, str) for c in columns):
            raise ArgumentTypeError(f"KMeans(columns=...) must be a non-empty list of column names, got {columns!r}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidArgumentError(f"KMeans(k=...) must be an int >= 1, got {k!r}")
        if not isinstance(max_iters, int) or isinstance(max_iters, bool) or max_iters < 1:
            raise InvalidArgumentError(f"KMeans(max_iters=...) must be a positive int, got {max_iters!r}")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ArgumentTypeError(f"KMeans(seed=...) must be an int or None, got {seed!r}")
        self.columns, self.k, self.seed, self.tol = list(columns), k, seed or 0, float(tol)
        self.init = None if init is None else _check_init(init, k, self.columns)
        self.user_max_iters = max_iters
        self.initialize()

    def vars_to_use(self) -> list[str]:
        return self.columns

    def check_data(self, info: DataInfo) -> None:
        info.require_numeric(self.columns, "KMeans")
        if info.rows is not None and self.k > info.rows:
            raise InvalidArgumentError(f"KMeans: k={self.k} is larger than the number of rows ({info.rows})")

    def initialize(self) -> None:
        self.centers = None if self.init is None else self.init.copy()
        # without starting centers, the first pass picks them
        self.max_iters = self.user_max_iters + (1 if self.centers is None else 0)
        self.iterations = 0
        self.shift = np.inf
        self.initialize_iteration()

    def initialize_iteration(self) -> None:
        d = len(self.columns)
        self.candidates: list[tuple[bytes, tuple[float, ...]]] = []
        self.sums = np.zeros((self.k, d))
        self.counts = np.zeros(self.k, dtype=np.int64)
        self.sse = np.zeros(self.k)

    def _rows(self, chunk: pd.DataFrame) -> np.ndarray:
        if list(chunk.columns) == self.columns:  # as read: no copy when the columns are all float64
            values = chunk.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = chunk[self.columns].to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values).any(axis=1)
        return values[~missing] if missing.any() else values

    def process_data(self, chunk: pd.DataFrame) -> None:
        x = self._rows(chunk)
        if not len(x):
            return
        if self.centers is None:  # picking pass: keep the k rows with the smallest keys
            salt = str(self.seed).encode()
            keyed = [
                (hashlib.blake2b(row.tobytes(), digest_size=8, key=salt).digest(), tuple(row))
                for row in np.unique(x, axis=0)
            ]
            self.candidates = sorted(set(self.candidates) | set(keyed))[: self.k]
            return
        labels, best = nearest(x, self.centers)
        k = self.k
        for j in range(x.shape[1]):
            self.sums[:, j] += np.bincount(labels, weights=x[:, j], minlength=k)
        self.counts += np.bincount(labels, minlength=k)
        self.sse += np.bincount(labels, weights=best, minlength=k)

    def update_results(self, other: KMeans) -> None:
        if self.centers is None:
            self.candidates = sorted(set(self.candidates) | set(other.candidates))[: self.k]
            return
        self.sums += other.sums
        self.counts += other.counts
        self.sse += other.sse

    def process_results(self) -> KMeansResult:
        if self.centers is None:
            if len(self.candidates) < self.k:
                raise InvalidArgumentError(
                    f"KMeans: k={self.k} is larger than the number of distinct complete rows ({len(self.candidates)})"
                )
            self.centers = np.array([row for _, row in self.candidates])
            return self._result(self.centers, converged=False)  # the starting centers: no row assigned yet
        if self.counts.sum() == 0:
            raise EmptyDataError(f"KMeans: no complete rows in columns {self.columns}")
        new = self.centers.copy()
        filled = self.counts > 0  # an empty cluster keeps its center
        new[filled] = self.sums[filled] / self.counts[filled][:, None]
        self.shift = float(np.sqrt(((new - self.centers) ** 2).sum(axis=1)).max())
        self.iterations += 1
        result = self._result(new, converged=self.shift <= self.tol)
        self.centers = new
        return result

    def _result(self, centers: np.ndarray, converged: bool) -> KMeansResult:
        return KMeansResult(
            centers=pd.DataFrame(centers, columns=self.columns),
            sizes=self.counts.copy(),
            withinss=self.sse.copy(),
            tot_withinss=float(self.sse.sum()),
            iterations=self.iterations,
            converged=converged,
        )

    def has_converged(self) -> bool:
        return self.iterations > 0 and self.shift <= self.tol


def _check_init(init: object, k: int, columns: list[str]) -> np.ndarray:
    """Starting centers as a (k, len(columns)) float array of finite values, or an error naming them."""
    try:
        arr = np.asarray(init, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ArgumentTypeError(
            f"KMeans(init=...) must be a {k} x {len(columns)} array of numbers (k rows, one column per "
            f"column in {columns}), got {type(init).__name__}: {err}"
        ) from err
    if arr.shape != (k, len(columns)):
        raise InvalidArgumentError(
            f"KMeans(init=...) must have shape (k, len(columns)) = ({k}, {len(columns)}): one row per cluster, "
            f"one column per column in {columns}; got shape {arr.shape}"
        )
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        where = ", ".join(f"[{i}, {j}] = {arr[i, j]}" for i, j in bad[:5])
        raise InvalidArgumentError(f"KMeans(init=...) must hold finite numbers; {len(bad)} value(s) are not: {where}")
    return arr


def nearest(x: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest center for each row of ``x``, and the squared distance to it.

    With o the centers' mean and m = c - o: ||x - c||² = ||x - o||² - 2 x·m + (2 o·m + ||m||²), and
    the first term is the same for every center, so the argmin needs one matrix product (BLAS, one
    thread: the task slots are the parallelism) instead of an n x k x d array of differences. Its
    rounding error scales with |x| |m|, not |x| |c|: data far from the origin keeps its digits. The
    squared distance to the chosen center is then computed directly. The work is done on x transposed
    (d x n), contiguous for a chunk as pandas holds it (column by column).
    """
    origin = centers.mean(axis=0)
    moved = centers - origin
    xt = x.T
    with one_blas_thread():
        d = (-2.0 * moved) @ xt
    d += (2.0 * moved @ origin + np.einsum("ij,ij->i", moved, moved))[:, None]
    labels = d.argmin(axis=0)
    diff = xt - np.take(centers.T, labels, axis=1)
    return labels, np.einsum("ij,ij->j", diff, diff)
