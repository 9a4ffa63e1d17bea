"""Reliability: executor failures and retries lose nothing and count nothing twice; security."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkdist as sd
from sparkdist.pema import LinearRegression, pema_compute

ROOT = Path(__file__).resolve().parent.parent
#: the modes whose executors are JVMs of their own, which a test can kill
SEPARATE_EXECUTORS = ("cluster", "standalone", "connect-server")


def add(a, b):
    return a + b


def executor_pids() -> list[int]:
    from _cluster import own_executor_pids

    return own_executor_pids()  # this run's executors only: others may run tests on this machine


class ExecutorKiller(threading.Thread):
    """SIGKILLs one executor JVM as soon as ``condition()`` holds (work is under way)."""

    def __init__(self, condition, seconds=60.0):
        super().__init__(daemon=True)
        self.condition, self.seconds, self.killed = condition, seconds, []
        self.start()

    def run(self):
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not self.condition():
            time.sleep(0.05)
        pids = executor_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            self.killed.append(pids[0])


def kill_one_executor_when(condition, seconds=60.0) -> ExecutorKiller:
    return ExecutorKiller(condition, seconds)


def slow_sum(split, marks):
    time.sleep(0.3)
    Path(marks, f"{os.getpid()}-{time.monotonic_ns()}").touch()
    return int(split["id"].sum())


@pytest.mark.modes(*SEPARATE_EXECUTORS)
def test_executor_killed_during_distribute_job_with_reduce(spark, spark_ctx, tmp_path):
    df = spark.range(0, 20_000, 1, numPartitions=24)
    killer = kill_one_executor_when(lambda: len(list(tmp_path.iterdir())) >= 3)
    got = sd.distribute_job(slow_sum, df, str(tmp_path), reduce=add, compute_context=spark_ctx)
    killer.join(timeout=5)
    assert killer.killed, "no executor was killed"
    assert got == sum(range(20_000))  # no split lost, none merged twice


def slow_square(i, marks):
    time.sleep(0.3)
    Path(marks, f"{i}-{time.monotonic_ns()}").touch()
    return i * i


@pytest.mark.modes(*SEPARATE_EXECUTORS)
def test_executor_killed_during_exec_job(spark_ctx, tmp_path):
    killer = kill_one_executor_when(lambda: len(list(tmp_path.iterdir())) >= 3)
    got = sd.exec_job(
        slow_square, str(tmp_path), elem_args=list(range(30)), task_chunk_size=2, compute_context=spark_ctx
    )
    killer.join(timeout=5)
    assert killer.killed, "no executor was killed"
    assert got == [i * i for i in range(30)]


class SlowRegression(LinearRegression):
    def process_data(self, chunk):
        time.sleep(0.2)
        super().process_data(chunk)


@pytest.mark.modes(*SEPARATE_EXECUTORS)
def test_executor_killed_during_pema_compute(spark, spark_ctx):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=3000)})
    frame["y"] = 1 + 2 * frame["x"] + rng.normal(size=3000)
    df = spark.createDataFrame(frame).repartition(16)
    reference = pema_compute(LinearRegression("y", ["x"]), frame, compute_context=sd.LocalComputeContext())
    started = time.monotonic()
    killer = kill_one_executor_when(lambda: time.monotonic() - started > 2.0)
    fit = pema_compute(SlowRegression("y", ["x"]), df, compute_context=spark_ctx)
    killer.join(timeout=5)
    assert killer.killed, "no executor was killed"
    assert fit.n == 3000
    np.testing.assert_allclose(fit.coefficients, reference.coefficients, rtol=1e-9)


def crash_first_attempt(split):
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx.partitionId() == 1 and ctx.attemptNumber() == 0:
        os.kill(os.getpid(), signal.SIGKILL)  # the Python worker dies: Spark retries the task
    return int(split["id"].sum())


@pytest.mark.modes(*SEPARATE_EXECUTORS)
def test_task_that_fails_once_succeeds_on_retry(spark, spark_ctx):
    df = spark.range(0, 1000, 1, numPartitions=4)
    assert sd.distribute_job(crash_first_attempt, df, reduce=add, compute_context=spark_ctx) == sum(range(1000))
    assert sorted(sd.distribute_job(crash_first_attempt, df, compute_context=spark_ctx)) == sorted(
        int(sum(range(i * 250, (i + 1) * 250))) for i in range(4)
    )


# -- security ------------------------------------------------------------------------------------


def listening_sockets() -> set[tuple[str, int]]:
    import psutil

    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }


def test_no_listening_socket_is_opened_by_jobs(ctx, numbers):
    before = listening_sockets()
    sd.distribute_job(len, numbers, reduce=add, compute_context=ctx)
    sd.exec_job(pow, 2, elem_args=[1, 2, 3], compute_context=ctx)
    sd.exec_job(pow, 2, elem_args=[1, 2, 3], wait=False, compute_context=ctx).result(timeout=120)
    assert listening_sockets() <= before


def test_temporary_files_are_private():
    from sparkdist.spark import package_zip

    path = Path(package_zip())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_no_shell_true_in_the_package():
    offenders = [p for p in (ROOT / "sparkdist").rglob("*.py") if "shell=True" in p.read_text()]
    assert offenders == []
