"""Merges of partial results that do not depend on how the data was split.

- :class:`Moments`: count, mean and sum of squared deviations per column, merged with Chan et
  al.'s pairwise formula (each chunk is summarised with a two-pass mean first).
- :class:`QRAccumulator`: the R factor of ``[X | y]``. A chunk's rows are folded in by a QR of
  ``[R; rows]``, and two accumulators merge by a QR of ``[R1; R2]``: X'X is never formed, so the
  condition number is not squared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Moments:
    """Per-column moments of finite values."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    missing: np.ndarray

    @classmethod
    def empty(cls, width: int) -> Moments:
        z = np.zeros(width)
        return cls(
            z.copy(),
            z.copy(),
            z.copy(),
            np.full(width, np.inf),
            np.full(width, -np.inf),
            np.zeros(width, dtype=np.int64),
        )

    def add(self, values: np.ndarray) -> None:
        """Fold in a chunk: one row per observation, one column per variable (NaN = missing)."""
        for j in range(values.shape[1]):
            col = values[:, j]
            ok = col[~np.isnan(col)]
            self.missing[j] += len(col) - len(ok)
            if len(ok):
                m = ok.mean()
                self._merge_one(j, float(len(ok)), m, float(((ok - m) ** 2).sum()), ok.min(), ok.max())

    def _merge_one(self, j: int, n_b: float, mean_b: float, m2_b: float, lo: float, hi: float) -> None:
        n_a = self.count[j]
        n = n_a + n_b
        delta = mean_b - self.mean[j]
        self.mean[j] += delta * (n_b / n)
        self.m2[j] += m2_b + delta * delta * (n_a * n_b / n)
        self.count[j] = n
        self.minimum[j] = min(self.minimum[j], lo)
        self.maximum[j] = max(self.maximum[j], hi)

    def merge(self, other: Moments) -> None:
        """Fold in another accumulator (Chan's pairwise update)."""
        for j in range(len(self.count)):
            self.missing[j] += other.missing[j]
            if other.count[j]:
                self._merge_one(j, other.count[j], other.mean[j], other.m2[j], other.minimum[j], other.maximum[j])

    def variance(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 1, self.m2 / (self.count - 1), np.nan)


@dataclass
class QRAccumulator:
    """Upper-triangular R with R'R = A'A for all rows A folded in so far."""

    width: int
    r: np.ndarray = field(init=False)
    rows: int = 0

    def __post_init__(self) -> None:
        self.r = np.zeros((0, self.width))

    def add(self, rows: np.ndarray) -> None:
        if len(rows):
            self.r = np.asarray(np.linalg.qr(np.vstack([self.r, rows]), mode="r"))
            self.rows += len(rows)

    def merge(self, other: QRAccumulator) -> None:
        if other.rows:
            self.r = np.asarray(np.linalg.qr(np.vstack([self.r, other.r]), mode="r"))
            self.rows += other.rows

    def square(self) -> np.ndarray:
        """R padded to width x width (zero rows when fewer rows than columns were seen)."""
        out = np.zeros((self.width, self.width))
        out[: self.r.shape[0]] = self.r[: self.width]
        return out


def collinear(r: np.ndarray, names: list[str], rtol: float = 1e-9) -> list[tuple[str, list[str]]]:
    """Columns of the design whose R diagonal is negligible against their norm: each is (nearly) a
    linear combination of the columns before it."""
    out = []
    for j in range(r.shape[0]):
        norm = np.linalg.norm(r[: j + 1, j])
        if norm == 0 or abs(r[j, j]) <= rtol * norm:
            out.append((names[j], names[:j]))
    return out
