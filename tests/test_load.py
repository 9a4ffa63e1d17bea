"""Hygiene under load: many small jobs in a row and many threads at once give correct results and
leave nothing behind (driver threads, open file descriptors, temporary files, Spark jobs)."""

from __future__ import annotations

import concurrent.futures
import gc
import os
import tempfile
import threading
import time

import pandas as pd
import pytest

import sparkdist as sd

FRAME = pd.DataFrame({"x": range(1, 41)})
TOTAL = int(FRAME["x"].sum())


def add(a, b):
    return a + b


def column_sum(split):
    return int(split["x"].sum())


def in_a_row(ctx) -> int:
    """1,000 jobs without a JVM. Spark's own floor here is ~0.1 s per job (even for
    ``spark.range(2).count()``), so the Spark modes run 60 / 30 to keep CI short;
    ``make soak`` (benchmarks/soak.py) runs 1,000 in a row in every mode."""
    session = getattr(ctx, "_session", None)
    if session is None:
        return 1000
    connect = type(session).__module__.startswith("pyspark.sql.connect")
    return 60 if not connect and session.sparkContext.master.startswith("local[") else 30


def snapshot() -> dict[str, int]:
    import psutil

    gc.collect()
    temp = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(("sparkdist", "tmp"))]
    return {"threads": threading.active_count(), "fds": psutil.Process().num_fds(), "temp": len(temp)}


def settled(before: dict[str, int], slack: dict[str, int], seconds: float = 20.0) -> dict[str, int]:
    """Poll until nothing has grown past ``slack`` (ending threads take a moment); the last snapshot."""
    deadline = time.monotonic() + seconds
    while True:
        now = snapshot()
        if all(now[k] <= before[k] + slack[k] for k in before) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def one_job(ctx, i: int) -> None:
    """A small job of one of three kinds, checked."""
    kind = i % 3
    if kind == 0:
        assert sd.distribute_job(column_sum, FRAME, reduce=add, compute_context=ctx) == TOTAL
    elif kind == 1:
        assert sd.exec_job(abs, elem_args=[-i, -1], compute_context=ctx) == [i, 1]
    else:
        job = sd.exec_job(add, elem_args=[(i, 1)], wait=False, compute_context=ctx)
        assert job.result(timeout=120) == [i + 1]


SLACK = {"threads": 0, "fds": 2, "temp": 0}


def test_a_thousand_small_jobs_in_a_row_leave_nothing_behind(ctx, no_spark_job_running):
    for i in range(6):  # warm up: pools, Python workers, shipped package, py4j connections
        one_job(ctx, i)
    before = snapshot()
    n = in_a_row(ctx)
    for i in range(n):
        one_job(ctx, i)
    after = settled(before, SLACK)
    assert after["threads"] <= before["threads"], (before, after)
    assert after["fds"] <= before["fds"] + SLACK["fds"], (before, after)
    assert after["temp"] <= before["temp"], (before, after)
    assert len(sd.get_jobs()) <= sd.jobs.KEEP_ENDED  # ended jobs (and their results) are not hoarded
    no_spark_job_running(ctx)


def test_eight_threads_submitting_at_once(ctx, no_spark_job_running):
    def worker(t: int) -> list[int]:
        out = []
        one_job(ctx, t)
        out.append(sd.exec_job(lambda v: v * v, elem_args=[t], compute_context=ctx)[0])
        return out

    def at_once() -> list[list[int]]:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return list(pool.map(worker, range(8)))

    at_once()  # warm up: the first threads' connections and Python workers
    before = snapshot()
    assert at_once() == [[t * t] for t in range(8)]
    after = settled(before, SLACK)
    assert after["threads"] <= before["threads"], (before, after)
    assert after["fds"] <= before["fds"] + SLACK["fds"], (before, after)
    assert after["temp"] <= before["temp"], (before, after)
    no_spark_job_running(ctx)


@pytest.mark.parametrize("n_jobs", [8])
def test_jobs_submitted_from_threads_without_waiting_all_finish(ctx, n_jobs, no_spark_job_running):
    jobs: list[sd.Job] = []
    lock = threading.Lock()

    def submit(t: int) -> None:
        job = sd.distribute_job(column_sum, FRAME, reduce=add, wait=False, compute_context=ctx)
        with lock:
            jobs.append(job)

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(n_jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    finished = list(sd.as_completed(jobs, timeout=300))
    assert len(finished) == n_jobs
    assert all(job.status == "finished" and job.result() == TOTAL for job in finished)
    no_spark_job_running(ctx)
