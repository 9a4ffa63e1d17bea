"""Python worker memory of a chunked job: distribute_job(..., chunked=True) over a ~4 GB Parquet data
set (50,000,000 rows x 10 float64 columns, 10 files, row groups of 1,048,576 rows = 80 MiB) with
rows_per_chunk=100,000, on local[2]. Every worker measures its own resident set from inside: a thread
samples psutil's RSS every 2 ms while the function runs, and resource.getrusage's ru_maxrss is read at
the end (the worker's lifetime peak; workers are not reused here, so it is the task's). Reported: the
largest peak of any worker, against BOUND_MB.

Each configuration runs in its own Spark (a new JVM), as spark.executor.pyspark.memory is fixed when
Spark starts:
- default settings;
- spark.executor.pyspark.memory=512m: Spark limits each worker's address space to 512 MiB (a worker
  that needs more fails with a MemoryError);
each with splits of about one row group (the default split_bytes, 128 MiB) and with splits of twelve
row groups (split_bytes=1 GiB): a flat memory does not grow with the split.

    python benchmarks/bench_memory.py [--rows 50000000] [--keep-data]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT

DATA = ROOT / "benchmarks" / "data" / "big"
ROWS_PER_FILE = 5_000_000
ROW_GROUP = 1_048_576
COLS = [f"x{j}" for j in range(10)]
#: What a worker may use at most: the Python worker with pandas and pyarrow loaded (~110 MB here),
#: one row group's column chunks as read from disk (80 MiB), and a few chunks of 100,000 rows
#: (8 MB each) as Arrow and as pandas.
BOUND_MB = 300


def make_data(rows: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = DATA / f"_rows_{rows}"
    if marker.exists():
        return DATA
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    rng = np.random.default_rng(1)
    schema = pa.schema([(c, pa.float64()) for c in COLS])
    for i, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        n_file = min(ROWS_PER_FILE, rows - start)
        with pq.ParquetWriter(DATA / f"part-{i:03d}.parquet", schema) as writer:
            for offset in range(0, n_file, ROW_GROUP):
                n = min(ROW_GROUP, n_file - offset)
                table = pa.table({c: rng.standard_normal(n) for c in COLS}, schema=schema)
                writer.write_table(table, row_group_size=ROW_GROUP)
    marker.touch()
    return DATA


def peak_memory(chunks: Any) -> dict[str, Any]:
    """Runs on a worker: the chunks' column sums, and the worker's own peak RSS meanwhile."""
    import os
    import resource
    import threading

    import psutil

    proc = psutil.Process()
    start = proc.memory_info().rss
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler: threading.Thread | None = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()  # type: ignore[union-attr]
    except RuntimeError:  # under spark.executor.pyspark.memory a thread's stack may not fit: per chunk only
        sampler = None
    rows = n_chunks = largest = 0
    total = 0.0
    try:
        for chunk in chunks:
            rows += len(chunk)
            n_chunks += 1
            largest = max(largest, len(chunk))
            total += float(chunk.to_numpy().sum())
            peak[0] = max(peak[0], proc.memory_info().rss)
    finally:
        done.set()
        if sampler is not None:
            sampler.join()
    return {
        "pid": os.getpid(),
        "start": start,
        "peak": max(peak[0], proc.memory_info().rss),
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rows": rows,
        "chunks": n_chunks,
        "largest": largest,
        "sum": total,
        "sampled": sampler is not None,
        "vms": proc.memory_info().vms,
    }


def run_variant(pyspark_memory: str | None, split_bytes: list[int]) -> list[dict[str, Any]]:
    import sparkdist as sd

    config = {"spark.python.worker.reuse": "false"}  # one worker per task: its ru_maxrss is the task's
    if pyspark_memory:
        config["spark.executor.pyspark.memory"] = pyspark_memory
    ctx = sd.SparkComputeContext(master="local[2]", spark_config=config)
    out = []
    try:
        for size in split_bytes:
            source = sd.ParquetData(DATA, rows_per_chunk=100_000, split_bytes=size)
            started = time.perf_counter()
            try:
                parts = sd.distribute_job(peak_memory, source, chunked=True, compute_context=ctx)
                error = None
            except Exception as err:  # a worker over the limit: reported, not raised
                parts, error = [], f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
            out.append(
                {
                    "split_bytes": size,
                    "seconds": time.perf_counter() - started,
                    "splits": len(parts),
                    "rows": sum(p["rows"] for p in parts),
                    "largest_chunk": max((p["largest"] for p in parts), default=0),
                    "start_mb": max((p["start"] for p in parts), default=0) / 2**20,
                    "peak_mb": max((p["peak"] for p in parts), default=0) / 2**20,
                    "maxrss_mb": max((p["maxrss"] for p in parts), default=0) / 2**20,
                    "vms_mb": max((p["vms"] for p in parts), default=0) / 2**20,
                    "sampled": all(p["sampled"] for p in parts),
                    "error": error,
                }
            )
    finally:
        ctx.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--keep-data", action="store_true", help="leave the data set in benchmarks/data")
    ap.add_argument("--variant", choices=["default", "512m"], help=argparse.SUPPRESS)  # one child run
    args = ap.parse_args()
    sizes = [128 * 2**20, 2**30]
    if args.variant:
        print(json.dumps(run_variant(None if args.variant == "default" else "512m", sizes)))
        return
    make_data(args.rows)
    results = {}
    for variant in ("default", "512m"):
        child = subprocess.run(
            [sys.executable, __file__, "--variant", variant], capture_output=True, text=True, check=True
        )
        results[variant] = json.loads(child.stdout.strip().splitlines()[-1])
    size_gb = sum(p.stat().st_size for p in DATA.glob("*.parquet")) / 1e9
    print(f"\nchunked distribute_job, {args.rows:,} rows x {len(COLS)} float64 ({size_gb:.1f} GB Parquet), ", end="")
    print(f"rows_per_chunk=100,000, local[2]; worker peak RSS, bound {BOUND_MB} MB")
    print(f"{'pyspark memory':<16}{'split_bytes':>12}{'splits':>8}{'seconds':>9}{'RSS at start':>14}", end="")
    print(f"{'peak RSS':>10}{'ru_maxrss':>11}  result")
    worst = 0.0
    for variant, rows in results.items():
        for r in rows:
            ok = r["error"] is None and r["rows"] == args.rows and r["largest_chunk"] <= 100_000
            worst = max(worst, r["peak_mb"], r["maxrss_mb"])
            print(
                f"{variant:<16}{r['split_bytes'] // 2**20:>9} MiB{r['splits']:>8}{r['seconds']:>9.1f}"
                f"{r['start_mb']:>11.0f} MB{r['peak_mb']:>7.0f} MB{r['maxrss_mb']:>8.0f} MB  "
                + ("ok" if ok else f"FAILED {r['error'] or r}")
            )
    print(f"largest worker peak: {worst:.0f} MB, bound {BOUND_MB} MB: {'within' if worst <= BOUND_MB else 'OVER'}")
    if not args.keep_data:
        shutil.rmtree(DATA)


if __name__ == "__main__":
    main()
