"""output= against hand-written Spark writes, on local[2], in one session; ours and theirs alternate
(--pairs times), the median ratio and its range are printed.

- distribute_job(identity, parquet, output=) vs spark.read.parquet(...).mapInArrow(identity, schema)
  .write.parquet(...): --rows rows x 10 float64 columns (target: ratio <= 1.0)
- exec_by(score, ..., output=) on --groups groups vs groupBy(key).applyInPandas(score, schema)
  .write.parquet(...), each group's rows written back with a prediction column; flat Parquet (target
  <= 0.7) and hive folders of the key (target <= 0.4)
- the driver's resident memory while a job writes --mem-rows rows (sampled every 20 ms), against its
  value before the job (target: within 150 MB)

    python benchmarks/bench_output.py [--rows 4000000] [--groups 1000] [--pairs 5] [--mem-rows 8000000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
from _common import ROOT, paired_ratio

import sparkdist as sd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_distribute import make_data
from bench_exec_by import make, write

OUT = ROOT / "benchmarks" / "data" / "output"


def identity(split: pd.DataFrame) -> pd.DataFrame:
    return split


def identity_batches(batches):
    yield from batches


def score(keys, group: pd.DataFrame) -> pd.DataFrame:
    """Each row of the group with a prediction from the group's own least squares fit."""
    x = np.column_stack([np.ones(len(group)), group[["x1", "x2", "x3"]].to_numpy()])
    b = np.linalg.lstsq(x, group["y"].to_numpy(), rcond=None)[0]
    return group.assign(pred=x @ b)


def score_pandas(group: pd.DataFrame) -> pd.DataFrame:
    return score(None, group)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def peak_during(fn) -> tuple[float, float]:
    """(RSS before, peak RSS while ``fn`` runs), in MB, sampled every 20 ms."""
    before, peak, done = rss_mb(), [rss_mb()], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return before, peak[0]


def folder(name: str) -> str:
    path = OUT / name
    if path.exists():
        shutil.rmtree(path)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--group-rows", type=int, default=1_000_000, help="rows of the exec_by data")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--mem-rows", type=int, default=8_000_000)
    a = parser.parse_args()
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[2]").config("spark.driver.host", "127.0.0.1").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    ctx = sd.SparkComputeContext(spark)
    results = []

    data = str(make_data(ROOT / "benchmarks" / "data" / f"wide_{a.rows}", a.rows))
    frame = spark.read.parquet(data)
    schema = frame.schema
    r = paired_ratio(
        lambda: sd.distribute_job(identity, data, output=folder("ours"), mode="overwrite", compute_context=ctx),
        lambda: frame.mapInArrow(identity_batches, schema).write.mode("overwrite").parquet(folder("theirs")),
        a.pairs,
    )
    assert pads.dataset(OUT / "ours").count_rows() == pads.dataset(OUT / "theirs").count_rows() == a.rows
    results.append((f"distribute_job(output=), {a.rows:,} rows x 10", "mapInArrow.write.parquet", 1.0, r))

    table = make(a.group_rows, a.groups)
    out_schema = "key long, x1 double, x2 double, x3 double, y double, pred double"
    for name, hive, target in (("flat", False, 0.7), ("hive", True, 0.4)):
        path = write(table, f"by_key_{name}", hive=hive)
        r = paired_ratio(
            lambda p=path: sd.exec_by(score, p, ["key"], output=folder("ours_by"), mode="overwrite",
                                      continue_on_failure=False, compute_context=ctx),
            lambda p=path: spark.read.parquet(p).groupBy("key").applyInPandas(score_pandas, out_schema)
            .write.mode("overwrite").parquet(folder("theirs_by")),
            a.pairs,
        )  # fmt: skip
        assert pads.dataset(OUT / "ours_by").count_rows() == a.group_rows
        results.append((f"exec_by(output=), {a.groups:,} groups, {name}", "applyInPandas.write.parquet", target, r))

    big = str(make_data(ROOT / "benchmarks" / "data" / f"wide_{a.mem_rows}", a.mem_rows, files=16))
    before, peak = peak_during(
        lambda: sd.distribute_job(identity, big, output=folder("mem"), mode="overwrite", compute_context=ctx)
    )
    written = sum(f.stat().st_size for f in (OUT / "mem").rglob("*.parquet")) / 2**20

    print(f"\nlocal[2], Spark {spark.version}, {a.pairs} alternating pairs: median ratio ours/theirs (range)")
    for label, theirs, target, r in results:
        ok = "ok" if r["ratio"] <= target else "OVER"
        print(f"{label:<48} vs {theirs:<28} {r['ratio']:5.2f} ({r['low']:.2f}-{r['high']:.2f}) target <= {target} {ok}")
    growth = peak - before
    print(f"driver RSS writing {written:,.0f} MiB of Parquet ({a.mem_rows:,} rows): {before:,.0f} MB before, peak "
          f"{peak:,.0f} MB (+{growth:,.0f} MB; target within 150 MB: {'ok' if growth <= 150 else 'OVER'})")  # fmt: skip
    shutil.rmtree(OUT, ignore_errors=True)
    spark.stop()


if __name__ == "__main__":
    main()
