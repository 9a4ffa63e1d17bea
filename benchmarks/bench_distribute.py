"""distribute_job against a hand-written mapInArrow doing the same work on the same DataFrame.

Work: X'X of 9 float64 columns (the normal equations of a regression) over 4 million rows in 8
Parquet files, read by Spark as one DataFrame. Both sides compute the same numpy products per Arrow
batch; both return to the driver and sum there (distribute_job with reduce folds them as they arrive
when there are few splits or under Spark Connect, else on the executors in a tree). Prints one table; ratios < 1 mean sparkdist is faster.

    python benchmarks/bench_distribute.py [--rows 4000000] [--repeat 3] [--mode local|connect] [--chart]

``--chart`` also writes the reduce's ratio into docs/assets/bench_distribute.{json,png} (docs/performance.md).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT, chart_requested, median_time, write_chart

import sparkdist as sd

COLS = [f"c{i}" for i in range(9)]


def make_data(path: Path, rows: int, files: int = 8) -> Path:
    if path.exists() and (path / "_rows").exists() and (path / "_rows").read_text() == str(rows):
        return path
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per = rows // files
    for i in range(files):
        frame = pd.DataFrame(rng.normal(size=(per, 10)), columns=[*COLS, "y"])
        frame.to_parquet(path / f"part-{i:03d}.parquet", row_group_size=128_000, index=False)
    (path / "_rows").write_text(str(rows))
    return path


def xtx_chunks(chunks) -> np.ndarray:
    """sparkdist side: an iterator of pandas chunks of one split."""
    acc = np.zeros((9, 9))
    for chunk in chunks:
        x = chunk.to_numpy(dtype=np.float64, copy=False)
        acc += x.T @ x
    return acc


def hand_written_xtx(batches):
    """Hand-written side: mapInArrow over the same DataFrame, same numpy work per batch."""
    import pyarrow as pa

    acc = np.zeros((9, 9))
    for batch in batches:
        x = np.column_stack([batch.column(i).to_numpy(zero_copy_only=False) for i in range(batch.num_columns)])
        acc += x.T @ x
    yield pa.RecordBatch.from_pydict({"m": [pickle.dumps(acc)]})


def main() -> None:
    chart = chart_requested()
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mode", choices=["local", "connect"], default="local")
    args = ap.parse_args()

    data = make_data(ROOT / "benchmarks" / "data" / "xtx", args.rows)
    ctx = sd.SparkComputeContext(**({"remote": "local[2]"} if args.mode == "connect" else {"master": "local[2]"}))
    spark = ctx.session
    df = spark.read.parquet(str(data)).select(*COLS)
    n_parts = len(spark.read.parquet(str(data)).inputFiles())

    def hand():
        rows = df.mapInArrow(hand_written_xtx, "m binary").collect()
        return sum(pickle.loads(r.m) for r in rows)

    def ours_reduce():
        return sd.distribute_job(xtx_chunks, df, chunked=True, reduce=np.add, compute_context=ctx)

    def ours_list():
        return sum(sd.distribute_job(xtx_chunks, df, chunked=True, compute_context=ctx))

    # warm up Python workers and the JVM once for each, then measure alternately
    hand(), ours_reduce(), ours_list()
    t_hand, ref = median_time(hand, args.repeat)
    t_red, got_red = median_time(ours_reduce, args.repeat)
    t_list, got_list = median_time(ours_list, args.repeat)
    np.testing.assert_allclose(got_red, ref, rtol=1e-10)
    np.testing.assert_allclose(got_list, ref, rtol=1e-10)

    print(
        f"\nX'X of 9 columns, {args.rows:,} rows, {n_parts} Parquet files, Spark {spark.version} {args.mode}[2], median of {args.repeat}"
    )
    print(f"{'variant':<52}{'seconds':>9}{'ratio':>8}")
    print(f"{'hand-written mapInArrow + collect + sum on driver':<52}{t_hand:>9.3f}{1.0:>8.2f}")
    print(f"{'distribute_job(chunked=True, reduce=np.add)':<52}{t_red:>9.3f}{t_red / t_hand:>8.2f}")
    print(f"{'distribute_job(chunked=True) + sum on driver':<52}{t_list:>9.3f}{t_list / t_hand:>8.2f}")
    if chart:
        label = "Spark Connect" if args.mode == "connect" else "classic Spark"
        write_chart(
            "bench_distribute",
            f"distribute_job(chunked=True, reduce=np.add) on a Spark DataFrame, {args.rows / 1e6:g} M rows",
            [{"label": f"{label} vs hand-written mapInArrow", "ratio": round(t_red / t_hand, 3)}],
            measured=f"{args.mode}[2], Spark {spark.version}, median of {args.repeat}",
            command="python benchmarks/bench_distribute.py --chart  (and --mode connect)",
        )
    ctx.stop()


if __name__ == "__main__":
    main()
