"""The Parquet fast path against Spark's own scan: X'X of 9 columns over 4,000,000 rows x 10 float64
columns in 8 Parquet files (about 316 MB), on local[2], in one session.

Rows printed (median of --repeat runs):
- Spark SQL aggregation of the same 45 sums (agg(sum(a*b), ...)) on spark.read.parquet
- hand-written mapInArrow with numpy on spark.read.parquet
- distribute_job on ParquetData (executors read their row groups with pyarrow)
- distribute_job on SparkData (spark.read.parquet), for the SparkData overhead
- two plain Python processes with pyarrow + numpy, no Spark: the floor on 2 cores

    python benchmarks/bench_parquet.py [--rows 4000000] [--repeat 3] [--chart]

``--chart`` also writes docs/assets/bench_parquet.{json,png} (docs/performance.md).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import pickle
import sys
from pathlib import Path

import numpy as np
from _common import ROOT, chart_requested, median_time, write_chart

import sparkdist as sd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_distribute import COLS, make_data


def xtx(split) -> np.ndarray:
    x = split.to_numpy(dtype=np.float64)
    return x.T @ x


def xtx_chunks(chunks) -> np.ndarray:
    acc = np.zeros((9, 9))
    for chunk in chunks:
        x = chunk.to_numpy(dtype=np.float64)
        acc += x.T @ x
    return acc


def hand_written(batches):
    import pyarrow as pa

    acc = np.zeros((9, 9))
    for batch in batches:
        x = np.column_stack([batch.column(i).to_numpy(zero_copy_only=False) for i in range(batch.num_columns)])
        acc += x.T @ x
    yield pa.RecordBatch.from_pydict({"m": [pickle.dumps(acc)]})


def floor_worker(files: list[str]) -> np.ndarray:
    import pyarrow.parquet as pq

    acc = np.zeros((9, 9))
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=65_536, columns=COLS):
            x = np.column_stack([c.to_numpy() for c in batch.columns])
            acc += x.T @ x
    return acc


def main() -> None:
    from pyspark.sql import functions as F

    chart = chart_requested()
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data_dir = make_data(ROOT / "benchmarks" / "data" / "xtx", args.rows)
    files = sorted(str(p) for p in data_dir.glob("*.parquet"))

    ctx = sd.SparkComputeContext(master="local[2]")
    spark = ctx.session
    df = spark.read.parquet(str(data_dir)).select(*COLS)
    source = sd.ParquetData(data_dir, columns=COLS)
    pairs = [(a, b) for i, a in enumerate(COLS) for b in COLS[i:]]

    def sql():
        row = df.agg(*[F.sum(F.col(a) * F.col(b)) for a, b in pairs]).collect()[0]
        out = np.zeros((9, 9))
        for (a, b), v in zip(pairs, row, strict=True):
            i, j = COLS.index(a), COLS.index(b)
            out[i, j] = out[j, i] = v
        return out

    def hand():
        return sum(pickle.loads(r.m) for r in df.mapInArrow(hand_written, "m binary").collect())

    def ours_parquet():
        return sd.distribute_job(xtx_chunks, source, chunked=True, reduce=np.add, compute_context=ctx)

    def ours_spark_data():
        return sd.distribute_job(xtx_chunks, df, chunked=True, reduce=np.add, compute_context=ctx)

    pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))

    def two_processes():
        return sum(pool.map(floor_worker, [files[0::2], files[1::2]]))

    for fn in (sql, hand, ours_parquet, ours_spark_data, two_processes):
        fn()  # warm up
    results = {}
    for name, fn in (
        ("sql", sql),
        ("hand", hand),
        ("parquet", ours_parquet),
        ("sparkdata", ours_spark_data),
        ("floor", two_processes),
    ):
        results[name] = median_time(fn, args.repeat)
    ref = results["floor"][1]
    for name, (_, value) in results.items():
        np.testing.assert_allclose(value, ref, rtol=1e-9, err_msg=name)
    t = {name: v[0] for name, v in results.items()}
    print(
        f"\nX'X of 9 columns, {args.rows:,} rows, {len(files)} Parquet files, Spark {spark.version} local[2], median of {args.repeat}"
    )
    print(f"{'variant':<56}{'seconds':>9}{'vs SQL':>9}{'vs floor':>10}")
    for label, key in (
        ("Spark SQL agg(sum(a*b), ...)", "sql"),
        ("hand-written mapInArrow + numpy", "hand"),
        ("distribute_job on ParquetData (Arrow fast path)", "parquet"),
        ("distribute_job on SparkData (spark.read.parquet)", "sparkdata"),
        ("two Python processes, pyarrow + numpy, no Spark", "floor"),
    ):
        print(f"{label:<56}{t[key]:>9.3f}{t[key] / t['sql']:>9.2f}{t[key] / t['floor']:>10.2f}")
    print(f"distribute_job on SparkData / hand-written mapInArrow: {t['sparkdata'] / t['hand']:.2f}")
    if chart:
        write_chart(
            "bench_parquet",
            f"X'X of 9 columns over {args.rows / 1e6:g} M rows of Parquet, local[2]",
            [
                {"label": "ParquetData vs Spark SQL's aggregation", "ratio": round(t["parquet"] / t["sql"], 3)},
                {
                    "label": "ParquetData vs 2 processes of pyarrow+numpy (floor)",
                    "ratio": round(t["parquet"] / t["floor"], 3),
                },
                {"label": "SparkData vs hand-written mapInArrow", "ratio": round(t["sparkdata"] / t["hand"], 3)},
            ],
            measured=f"local[2], Spark {spark.version}, median of {args.repeat}",
            command="python benchmarks/bench_parquet.py --chart",
        )
    pool.shutdown()
    ctx.stop()


if __name__ == "__main__":
    main()
