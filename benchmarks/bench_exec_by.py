"""exec_by against hand-written ``groupBy(key).applyInPandas``: an OLS fit per group, 1,000 groups over
4,000,000 rows (Parquet), on local[2], in one session.

Rows printed (median of --repeat runs):
- not partitioned: applyInPandas on spark.read.parquet vs exec_by on the same folder (one shuffle)
- hive-partitioned by the key: applyInPandas on spark.read.parquet (Spark still shuffles) vs exec_by
  (each group read from its folder, no shuffle)
- skew: one group holding half of all rows, exec_by(chunked=True) folding X'X chunk by chunk; the
  Python workers' peak RSS (ru_maxrss, measured inside them) against the bound stated below.

    python benchmarks/bench_exec_by.py [--rows 4000000] [--groups 1000] [--repeat 2] [--chart]

``--chart`` also writes docs/assets/bench_exec_by.{json,png} (docs/performance.md).
"""

from __future__ import annotations

import argparse
import resource
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from _common import ROOT, chart_requested, median_time, write_chart

import sparkdist as sd

XS = ["x1", "x2", "x3"]


def make(rows: int, groups: int, skew: bool = False) -> pa.Table:
    rng = np.random.default_rng(1)
    key = rng.integers(0, groups, rows)
    if skew:
        key[: rows // 2] = 0  # one group holds half of all rows
    x = rng.normal(size=(rows, 3))
    y = 1.0 + x @ np.array([2.0, -1.0, 0.5]) + 0.1 * key / groups + rng.normal(scale=0.3, size=rows)
    return pa.table({"key": key, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y})


def write(table: pa.Table, folder: str, hive: bool) -> str:
    path = ROOT / "benchmarks" / "data" / folder
    if path.exists():
        shutil.rmtree(path)
    part = pads.partitioning(pa.schema([("key", pa.int64())]), flavor="hive") if hive else None
    if hive:  # as Spark's partitionBy writes it: each folder's rows together, in row groups of many rows
        table = table.sort_by("key")
    pads.write_dataset(table, path, format="parquet", partitioning=part, max_rows_per_file=1 << 20)
    return str(path)


def fit(keys, group) -> np.ndarray:
    """OLS coefficients of y on [1, x1, x2, x3]."""
    x = np.column_stack([np.ones(len(group)), group[XS].to_numpy()])
    return np.linalg.lstsq(x, group["y"].to_numpy(), rcond=None)[0]


def fit_pandas(group: pd.DataFrame) -> pd.DataFrame:
    """The same fit as applyInPandas needs it: a frame in, a frame of the declared schema out."""
    b = fit(None, group)
    return pd.DataFrame({"key": [int(group["key"].iloc[0])], **{f"b{i}": [b[i]] for i in range(4)}})


SCHEMA = "key long, b0 double, b1 double, b2 double, b3 double"


def fold_xtx(keys, chunks) -> tuple[int, float]:
    """X'X of the group chunk by chunk; returns the rows and this worker's peak RSS in MiB."""
    acc, rows = np.zeros((5, 5)), 0
    for chunk in chunks:
        x = np.column_stack([np.ones(len(chunk)), chunk[[*XS, "y"]].to_numpy()])
        acc += x.T @ x
        rows += len(chunk)
    return rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    chart = chart_requested()
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    a = parser.parse_args()
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[2]").config("spark.driver.host", "127.0.0.1").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    ctx = sd.SparkComputeContext(spark)

    # skew first, while the Python workers are fresh (ru_maxrss is a process's peak over its life)
    skewed = write(make(a.rows, a.groups, skew=True), "by_key_skewed", hive=False)
    res = sd.exec_by(fold_xtx, skewed, ["key"], chunked=True, compute_context=ctx).to_dict()
    big_rows, _ = res[(0,)]
    peak, start = max(v[1] for v in res.values()), min(v[1] for v in res.values())
    bound = start + 64
    print(f"skew: group 0 has {big_rows:,} of {a.rows:,} rows (about {big_rows * 40 / 2**20:.0f} MiB of floats); "
          f"Python workers' peak RSS {peak:.0f} MiB, {start:.0f} MiB after their first group; bound stated: "
          f"that + 64 MiB = {bound:.0f} MiB -> {'within' if peak <= bound else 'OVER'}")  # fmt: skip

    table = make(a.rows, a.groups)
    flat, hive = write(table, "by_key_flat", hive=False), write(table, "by_key_hive", hive=True)
    rows = []
    for name, path in (("not partitioned", flat), ("hive-partitioned", hive)):
        t_hand, hand = median_time(
            lambda p=path: spark.read.parquet(p).groupBy("key").applyInPandas(fit_pandas, SCHEMA).collect(), a.repeat
        )
        t_ours, ours = median_time(lambda p=path: sd.exec_by(fit, p, ["key"], compute_context=ctx), a.repeat)
        want = {r.key: np.array([r.b0, r.b1, r.b2, r.b3]) for r in hand}
        got = {g.keys["key"]: g.result for g in ours}
        assert got.keys() == want.keys() and all(np.allclose(got[k], want[k], rtol=1e-9) for k in want)
        rows.append((name, t_hand, t_ours))
    print(f"\n{a.rows:,} rows, {a.groups:,} groups, OLS per group, local[2], median of {a.repeat}")
    print(f"{'data':<18} {'applyInPandas s':>16} {'exec_by s':>10} {'ratio':>7}")
    for name, t_hand, t_ours in rows:
        print(f"{name:<18} {t_hand:>16.2f} {t_ours:>10.2f} {t_ours / t_hand:>7.2f}")
    if chart:
        labels = {
            "not partitioned": "flat Parquet (one shuffle)",
            "hive-partitioned": "hive folders of the key (no shuffle)",
        }
        write_chart(
            "bench_exec_by",
            f"exec_by vs groupBy(key).applyInPandas: {a.rows / 1e6:g} M rows, {a.groups:,} groups, an OLS per group",
            [{"label": labels[name], "ratio": round(t_ours / t_hand, 3)} for name, t_hand, t_ours in rows],
            measured=f"local[2], Spark {spark.version}, median of {a.repeat}",
            command="python benchmarks/bench_exec_by.py --chart",
        )
    spark.stop()


if __name__ == "__main__":
    main()
