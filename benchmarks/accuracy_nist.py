"""Summary's std and var on NIST's univariate reference sets, split every way, against numpy's two-pass.

For each of the nine sets (PiDigits, Lottery, Lew, Mavro, Michelso, NumAcc1-4) the rows are cut at
random points into 1..50 contiguous splits, for several seeds, and ``pema_compute(Summary())`` runs on
them in LocalComputeContext (each split a task, chunks of random size inside it, the partial results
merged as the context merges them). A second column merges the same splits in random binary trees
(as Spark's tree reduce may), on the Moments accumulators directly.

LRE (log relative error) = -log10(|x - ref| / |ref|), capped at 15 (the certified values have 15
significant digits). Printed per set: the certified s, numpy's LRE for s and s^2
(``np.std(x, ddof=1)``, float64), sparkdist's worst LRE over all splits and seeds, the worst shortfall
against numpy (numpy's LRE - sparkdist's; the goal is <= 0.5), and the worst LRE of sparkdist's std
and var measured against numpy's own results. The mean's worst LRE is checked too.

The NIST files are reference data and are not part of the project: they are read from
``../shared/data/nist/univ`` (beside the repository) or the folder given as an argument.

    python benchmarks/accuracy_nist.py [FOLDER] [--seeds 5] [--max-splits 50] [--spark]
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT

import sparkdist as sd
from sparkdist.pema import Summary, pema_compute
from sparkdist.pema._numerics import Moments
from sparkdist.sources.frames import FrameSplit, PandasData

SETS = ["PiDigits", "Lottery", "Lew", "Mavro", "Michelso", "NumAcc1", "NumAcc2", "NumAcc3", "NumAcc4"]
CAP = 15.0


def read_nist(path: Path) -> tuple[list[str], float, float]:
    """The data (as written) and the certified mean and standard deviation of one file: NIST's .dat
    layout (``Data : lines a to b``, ``ybar:``, ``s:``) or Commons Math's ``#``-header copy."""
    lines = path.read_text().splitlines()
    if lines[0].startswith("#"):
        head = {k.strip(): v.strip() for k, _, v in (ln.partition("=") for ln in lines if "=" in ln)}
        data = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#") and "=" not in ln]
        return data, float(head["mean"]), float(head["standardDeviation"])
    text = "\n".join(lines)
    m = re.search(r"Data\s*:\s*lines\s+(\d+)\s+to\s+(\d+)", text)
    mean = re.search(r"ybar:\s*(\S+)", text)
    s = re.search(r"\ss:\s*(\S+)", text)
    if not (m and mean and s):
        raise ValueError(f"{path}: not a NIST univariate file")
    first, last = int(m.group(1)), int(m.group(2))
    return [ln.strip() for ln in lines[first - 1 : last]], float(mean.group(1)), float(s.group(1))


def lre(x: float, ref: float) -> float:
    if x == ref:
        return CAP
    if ref == 0:
        return -math.log10(abs(x))
    return min(CAP, -math.log10(abs(x - ref) / abs(ref)))


class RandomSplits(PandasData):
    """A pandas frame cut at given row boundaries (one split per piece), read in chunks of random size."""

    def __init__(self, frame: pd.DataFrame, bounds: list[int], seed: int, columns=None) -> None:
        super().__init__(frame, columns=columns)
        self.bounds, self.seed = bounds, seed

    def with_columns(self, columns):
        return RandomSplits(self.frame, self.bounds, self.seed, columns if columns is not None else self.columns)

    def plan(self, slots):
        rng = random.Random(self.seed)
        frame = self.selected()
        pieces = itertools.pairwise(self.bounds)
        return [FrameSplit(frame.iloc[a:b], rows_per_chunk=rng.randint(1, max(1, b - a))) for a, b in pieces]


def cut(n: int, k: int, rng: random.Random) -> list[int]:
    return [0, *sorted(rng.sample(range(1, n), k - 1)), n]


def tree_merge(parts: list[Moments], rng: random.Random) -> Moments:
    parts = list(parts)
    while len(parts) > 1:
        i = rng.randrange(len(parts) - 1)
        parts[i].merge(parts.pop(i + 1))  # neighbours only: merges stay in split order
    return parts[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "data" / "nist" / "univ"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--max-splits", type=int, default=50)
    ap.add_argument("--spark", action="store_true", help="also run through SparkComputeContext(local[2])")
    args = ap.parse_args()
    folder = Path(args.folder)
    if not folder.is_dir():
        sys.exit(f"no NIST univariate folder at {folder} (give it as an argument)")

    contexts: list[tuple[str, sd.ComputeContext]] = [("Local", sd.LocalComputeContext())]
    if args.spark:
        contexts.append(("Spark", sd.SparkComputeContext(master="local[2]")))

    header = (
        f"{'set':<9} {'n':>5} {'certified s':>22}  {'numpy LRE s/var':>15}  "
        + "  ".join(f"{name + ' worst s/var':>17} {'short':>5} {'vs np':>5}" for name, _ in contexts)
        + f"  {'tree s/var':>11} {'short':>5}  {'mean':>5}"
    )
    print(header)
    started = time.perf_counter()
    worst_short = 0.0
    for name in SETS:
        texts, cert_mean, cert_s = read_nist(folder / f"{name}.txt")
        x = np.array([float(t) for t in texts])
        n = len(x)
        frame = pd.DataFrame({"y": x})
        np_s = float(np.std(x, ddof=1))
        np_var = float(np.var(x, ddof=1))
        np_lre = (lre(np_s, cert_s), lre(np_var, cert_s**2))
        cells = []
        worst_mean = CAP
        for _, ctx in contexts:
            lo_s = lo_v = vs_np = CAP
            for seed in range(args.seeds):
                rng = random.Random(seed)
                for k in range(1, min(args.max_splits, n) + 1):
                    bounds = cut(n, k, rng)
                    table = pema_compute(Summary(), RandomSplits(frame, bounds, seed), compute_context=ctx)
                    s, v, m = (float(table.loc["y", c]) for c in ("std", "var", "mean"))
                    lo_s, lo_v = min(lo_s, lre(s, cert_s)), min(lo_v, lre(v, cert_s**2))
                    vs_np = min(vs_np, lre(s, np_s), lre(v, np_var))
                    worst_mean = min(worst_mean, lre(m, cert_mean))
            short = max(np_lre[0] - lo_s, np_lre[1] - lo_v)
            worst_short = max(worst_short, short)
            cells.append(f"{lo_s:>8.2f}/{lo_v:<8.2f} {short:>5.2f} {vs_np:>5.1f}")
        t_s = t_v = CAP
        for seed in range(args.seeds):
            rng = random.Random(1000 + seed)
            for k in range(1, min(args.max_splits, n) + 1):
                parts = []
                bounds = cut(n, k, rng)
                for a, b in itertools.pairwise(bounds):
                    mo = Moments.empty(1)
                    mo.add(x[a:b, None])
                    parts.append(mo)
                mo = tree_merge(parts, rng)
                v = float(mo.variance()[0])
                t_s, t_v = min(t_s, lre(math.sqrt(v), cert_s)), min(t_v, lre(v, cert_s**2))
        t_short = max(np_lre[0] - t_s, np_lre[1] - t_v)
        worst_short = max(worst_short, t_short)
        print(
            f"{name:<9} {n:>5} {cert_s:>22.15g}  {np_lre[0]:>7.2f}/{np_lre[1]:<7.2f}  "
            + "  ".join(cells)
            + f"  {t_s:>5.2f}/{t_v:<5.2f} {t_short:>5.2f}  {worst_mean:>5.1f}"
        )
    print(
        f"\nworst shortfall against numpy: {worst_short:.2f} digits "
        f"({args.seeds} seeds x 1..{args.max_splits} splits; {time.perf_counter() - started:.1f} s)"
    )


if __name__ == "__main__":
    main()
