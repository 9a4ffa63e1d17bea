"""Soak: 1,000 small jobs in a row, then 8 threads submitting jobs at once, in one context; checks
every result and that driver threads, open file descriptors and temporary files did not grow.

    python benchmarks/soak.py --mode local      # classic local[2]; also cluster, connect, parallel, inproc

Exits 1 when a result is wrong or something grew. The test suite runs the same checks with
fewer jobs in the Spark modes (tests/test_load.py); this is the full-size run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import os
import sys
import tempfile
import threading
import time

import pandas as pd
from _common import ROOT  # noqa: F401 - sets the Spark environment up

import sparkdist as sd

FRAME = pd.DataFrame({"x": range(1, 41)})
TOTAL = int(FRAME["x"].sum())


def add(a, b):
    return a + b


def column_sum(split):
    return int(split["x"].sum())


def one_job(ctx: sd.ComputeContext, i: int) -> None:
    kind = i % 3
    if kind == 0:
        got, want = sd.distribute_job(column_sum, FRAME, reduce=add, compute_context=ctx), TOTAL
    elif kind == 1:
        got, want = sd.exec_job(abs, elem_args=[-i, -1], compute_context=ctx), [i, 1]
    else:
        got, want = sd.exec_job(add, elem_args=[(i, 1)], wait=False, compute_context=ctx).result(600), [i + 1]
    if got != want:
        raise SystemExit(f"job {i}: got {got!r}, expected {want!r}")


def snapshot() -> dict[str, int]:
    import psutil

    gc.collect()
    temp = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(("sparkdist", "tmp"))]
    return {"threads": threading.active_count(), "fds": psutil.Process().num_fds(), "temp files": len(temp)}


def make_context(mode: str) -> sd.ComputeContext:
    if mode == "inproc":
        return sd.LocalComputeContext()
    if mode == "parallel":
        return sd.LocalParallelComputeContext(2)
    if mode == "connect":
        return sd.SparkComputeContext(remote="local[2]")
    master = {"local": "local[2]", "cluster": "local-cluster[2,1,1024]"}[mode]
    return sd.SparkComputeContext(
        master=master, spark_config={"spark.executor.memory": "768m"} if mode == "cluster" else None
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["inproc", "parallel", "local", "cluster", "connect"], default="local")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="jobs per thread in the 8-thread phase (x2)")
    args = parser.parse_args()
    ctx = make_context(args.mode)
    for i in range(6):
        one_job(ctx, i)
    start = snapshot()
    t0 = time.perf_counter()
    for i in range(args.jobs):
        one_job(ctx, i)
    in_a_row = time.perf_counter() - t0

    def worker(t: int) -> None:
        for i in range(args.rounds):
            one_job(ctx, 3 * t + i)
            one_job(ctx, 3 * t + i + 1)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    threaded = time.perf_counter() - t0
    deadline = time.monotonic() + 30
    end = snapshot()
    while any(end[k] > start[k] + (2 if k == "fds" else 0) for k in start) and time.monotonic() < deadline:
        time.sleep(0.5)
        end = snapshot()
    active = []
    session = getattr(ctx, "_session", None)
    if session is not None and not type(session).__module__.startswith("pyspark.sql.connect"):
        active = list(session.sparkContext.statusTracker().getActiveJobsIds())
    print(f"soak, mode {args.mode}, sparkdist {sd.__version__}, Python {sys.version.split()[0]}")
    print(f"{args.jobs} jobs in a row: {in_a_row:.1f} s ({in_a_row / args.jobs * 1000:.0f} ms/job), all correct")
    print(f"8 threads x {2 * args.rounds} jobs at once: {threaded:.1f} s, all correct")
    print(f"{'':12}{'before':>8}{'after':>8}")
    for key in start:
        print(f"{key:12}{start[key]:>8}{end[key]:>8}")
    print(f"jobs kept by get_jobs(): {len(sd.get_jobs())}; Spark jobs still active: {active}")
    if isinstance(ctx, sd.SparkComputeContext):
        ctx.stop()
    elif isinstance(ctx, sd.LocalParallelComputeContext):
        ctx.close()
    grew = [k for k in start if end[k] > start[k] + (2 if k == "fds" else 0)]
    if grew or active:
        print(f"FAILED: grew: {grew}, active Spark jobs: {active}")
        return 1
    print("OK: nothing grew")
    return 0


if __name__ == "__main__":
    sys.exit(main())
