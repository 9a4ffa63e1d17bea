"""Merges of partial results that do not depend on how the data was split.

- :class:`Moments`: count, mean and sum of squared deviations per column, merged with Chan et
  al.'s pairwise formula. Each chunk is summarised by a corrected two-pass, and the mean is carried
  as a double-double (TwoSum), so the merge is as accurate as numpy's two-pass over the whole column
  whatever the split.
- :class:`QRAccumulator`: the R factor of ``[X | y]``. A chunk's rows are folded in by a QR of
  ``[R; rows]``, and two accumulators merge by a QR of ``[R1; R2]``: X'X is never formed, so the
  condition number is not squared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s + e == a + b exactly, s = fl(a + b) (Knuth's TwoSum, elementwise)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _renormalise(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) with the same sum and hi = fl(hi + lo); a non-finite pair keeps hi and gets lo = 0."""
    ok = np.isfinite(hi) & np.isfinite(lo)
    s, e = _two_sum(hi, lo)
    return np.where(ok, s, hi), np.where(ok, e, 0.0)


_BLOCK_CELLS = 1 << 16
_Stats = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _chunk_moments(x: np.ndarray) -> _Stats:
    """count, mean as (hi, lo), m2, min and max of each column of ``x`` (column-major, NaN =
    missing), by a corrected two-pass: hi = sum / n (pairwise), d = x - hi,
    m2 = sum(d^2) - sum(d)^2 / n, lo = sum(d) / n."""
    rows = x.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        total = x.sum(axis=0)
        if np.isnan(total).any():  # a NaN (or +inf and -inf) somewhere: the slower path that masks
            ok = ~np.isnan(x)
            n = ok.sum(axis=0).astype(np.float64)
            hi = np.where(ok, x, 0.0).sum(axis=0) / n
            d = np.where(ok, x - hi, 0.0)
        else:
            n = np.full(x.shape[1], float(rows))
            hi = total / rows
            d = x - hi
        sd = d.sum(axis=0)
        lo = sd / n
        np.square(d, out=d)
        m2 = np.maximum(d.sum(axis=0) - sd * lo, 0.0)
    hi, lo = _renormalise(hi, lo)
    return n, hi, lo, m2, np.fmin.reduce(x, axis=0), np.fmax.reduce(x, axis=0)


@dataclass
class Moments:
    """Per-column count, mean, sum of squared deviations (m2), min, max and missing of finite values.

    The mean is carried as a double-double: ``mean`` (the rounded mean, what callers read) plus
    ``mean_lo`` (what rounding left out), so that the difference of two partial means, which Chan's
    merge squares, is exact to a few units in the last place of the *difference*, however large the
    mean is against the standard deviation. A chunk is summarised by a corrected two-pass: its mean
    ``hi`` (pairwise sum), deviations ``d = x - hi``, ``m2 = sum(d^2) - sum(d)^2 / n`` and
    ``mean_lo = sum(d) / n``. All of it is vectorised over columns.
    """

    count: np.ndarray
    mean: np.ndarray
    mean_lo: np.ndarray
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
            z.copy(),
            np.full(width, np.inf),
            np.full(width, -np.inf),
            np.zeros(width, dtype=np.int64),
        )

    def add(self, values: np.ndarray) -> None:
        """Fold in a chunk: one row per observation, one column per variable (NaN = missing)."""
        # columns contiguous, so that numpy sums each column pairwise (a C-ordered array's sum over
        # axis 0 adds row after row, with an error growing like n instead of log n)
        x = np.asfortranarray(values, dtype=np.float64)
        rows, width = x.shape
        if rows == 0:
            return
        # a few columns at a time, about 512 KB, so that the passes over them run in cache
        step = max(1, _BLOCK_CELLS // rows)
        parts = [_chunk_moments(x[:, j : j + step]) for j in range(0, width, step)]
        n, hi, lo, m2, low, high = (np.concatenate(p) for p in zip(*parts, strict=True)) if len(parts) > 1 else parts[0]
        self.missing += rows - n.astype(np.int64)
        self._combine(n, hi, lo, m2, low, high)

    def _combine(
        self, n_b: np.ndarray, hi_b: np.ndarray, lo_b: np.ndarray, m2_b: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> None:
        """Chan's pairwise update with the difference of the means taken in double-double."""
        n_a = self.count
        n = n_a + n_b
        take = n_b > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(take, n_b / n, 0.0)
            s, e = _two_sum(hi_b, -self.mean)  # exact: hi_b - mean = s + e
            dl = e + (lo_b - self.mean_lo)
            delta = s + dl
            # mean + delta * w, in double-double (w = 1 when this side was empty: the other is copied)
            h, e2 = _two_sum(self.mean, s * w)
            mean, mean_lo = _renormalise(h, self.mean_lo + dl * w + e2)
            m2 = self.m2 + m2_b + delta * delta * (n_a * w)
        self.mean = np.where(take, mean, self.mean)
        self.mean_lo = np.where(take, mean_lo, self.mean_lo)
        self.m2 = np.where(take, m2, self.m2)
        self.count = n
        self.minimum = np.fmin(self.minimum, low)
        self.maximum = np.fmax(self.maximum, high)

    def merge(self, other: Moments) -> None:
        """Fold in another accumulator (Chan's pairwise update)."""
        self.missing += other.missing
        self._combine(other.count, other.mean, other.mean_lo, other.m2, other.minimum, other.maximum)

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
