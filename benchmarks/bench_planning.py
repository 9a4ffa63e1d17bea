"""Planning at scale: 10,000 Parquet files of 1,000 rows each (an int64 and 4 float64 columns, about
430 MB), on local[2], in one session, against ``spark.read.parquet(path).count()`` on the same folder.

Rows printed (median of --repeat rounds; in each round the variants run one after another, in a
rotated order, so that other load on the machine falls on all of them):
- Spark: ``spark.read.parquet(path).count()``
- ``ParquetData(path).validate()``: list the files, read every footer, plan the splits
- ``distribute_job(len, ParquetData(path), reduce=add)``: the same planning, then the job
- the same job with the splits sent as DataFrame rows (what happens past
  ``SPLITS_IN_FUNCTION`` splits), to show what the small-count path saves

A new ParquetData is made each time, so that every run lists and reads the footers again.

    python benchmarks/bench_planning.py [--files 10000] [--repeat 5] [--keep-data] [--chart]

``--chart`` also writes docs/assets/bench_planning.{json,png} (docs/performance.md).
"""

from __future__ import annotations

import argparse
import operator
import shutil
import statistics
import time
from pathlib import Path

from _common import ROOT, chart_requested, write_chart

import sparkdist as sd
from sparkdist.spark import running

DATA = ROOT / "benchmarks" / "data" / "many_files"
ROWS = 1_000


def make_data(files: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = DATA / f"_files_{files}"
    if marker.exists():
        return DATA
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(files):
        table = pa.table(
            {"id": np.arange(i * ROWS, (i + 1) * ROWS), **{f"x{j}": rng.standard_normal(ROWS) for j in range(4)}}
        )
        pq.write_table(table, DATA / f"part-{i:05d}.parquet")
    marker.touch()
    return DATA


def main() -> None:
    chart = chart_requested()
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep-data", action="store_true", help="leave the data set in benchmarks/data")
    args = ap.parse_args()
    path = str(make_data(args.files))
    expected = args.files * ROWS

    ctx = sd.SparkComputeContext(master="local[2]")
    spark = ctx.session
    splits_seen: list[int] = []

    def count() -> int:
        return int(spark.read.parquet(path).count())

    def validate() -> int:
        report = sd.ParquetData(path).validate(ctx)
        splits_seen.append(report.n_splits or 0)
        return int(report.n_rows or 0)

    def job() -> int:
        return int(sd.distribute_job(len, sd.ParquetData(path), reduce=operator.add, compute_context=ctx))

    def job_rows() -> int:
        saved = running.SPLIT_BYTES_IN_FUNCTION
        running.SPLIT_BYTES_IN_FUNCTION = 0  # every planned split goes as a DataFrame row
        try:
            return job()
        finally:
            running.SPLIT_BYTES_IN_FUNCTION = saved

    variants = {"count": count, "validate": validate, "job": job, "job_rows": job_rows}
    for fn in variants.values():
        assert fn() == expected, fn.__name__  # warm up, and check
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = time.perf_counter()
            assert variants[name]() == expected, name
            times[name].append(time.perf_counter() - started)
    t = {name: statistics.median(v) for name, v in times.items()}
    print(
        f"\n{args.files:,} Parquet files of {ROWS:,} rows, Spark {spark.version} local[2], "
        f"{ctx.task_slots} slots, {splits_seen[-1]} planned splits; median of {args.repeat} rounds"
    )
    print(f"{'variant':<62}{'seconds':>9}{'vs count':>10}")
    for label, key in (
        ("spark.read.parquet(path).count()", "count"),
        ("ParquetData(path).validate()", "validate"),
        ("distribute_job(len, ParquetData(path), reduce=add)", "job"),
        ("  the same, splits sent as DataFrame rows", "job_rows"),
    ):
        print(f"{label:<62}{t[key]:>9.2f}{t[key] / t['count']:>10.2f}")
    print("every round (s): " + "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in times.items()))
    if chart:
        write_chart(
            "bench_planning",
            f"{args.files:,} Parquet files of {ROWS:,} rows vs spark.read.parquet(path).count()",
            [
                {"label": "ParquetData(path).validate()", "ratio": round(t["validate"] / t["count"], 3)},
                {"label": "distribute_job(..., reduce=)", "ratio": round(t["job"] / t["count"], 3)},
            ],
            measured=f"local[2], Spark {spark.version}, median of {args.repeat} rounds",
            command="python benchmarks/bench_planning.py --chart",
        )
    ctx.stop()
    if not args.keep_data:
        shutil.rmtree(DATA)


if __name__ == "__main__":
    main()
