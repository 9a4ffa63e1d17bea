"""Spark-only behaviour: the executor-side tree reduce, sessions, shipping the package."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sparkdist as sd
from sparkdist import _serde, _worker
from sparkdist.context import SplitWork
from sparkdist.spark import reduce as spark_reduce

ROOT = Path(__file__).resolve().parent.parent


def add(a, b):
    return a + b


def test_driver_receives_about_sqrt_n_partials(spark, spark_ctx, monkeypatch):
    # up to DRIVER_FOLD_MAX splits the driver folds them itself (one stage); past it, a tree
    monkeypatch.setattr(spark_reduce, "DRIVER_FOLD_MAX", 10)
    df = spark.range(0, 10_000, 1, numPartitions=50)
    src = sd.SparkData(df)
    task = _worker.SplitTask(func=lambda s: int(s["id"].sum()), args=(), kwargs={}, chunked=False)
    outcomes = spark_ctx.run_splits(SplitWork(task, _serde.dumps(task), src.prepare(spark_ctx), _serde.dumps(add)))
    assert len(outcomes) <= 8  # ⌈√50⌉ = 8 splits per group -> 7 groups
    assert sum(v for _, _, v in outcomes) == sum(range(10_000))
    # and the public call agrees
    assert sd.distribute_job(lambda s: int(s["id"].sum()), df, reduce=add, compute_context=spark_ctx) == sum(
        range(10_000)
    )


def split_sums(split):
    return [int(split["id"].sum())]


def test_tree_reduce_without_knowing_the_split_count(spark, spark_ctx, monkeypatch):
    # after a shuffle (and always under Connect) the split count is unknown until the job runs:
    # fixed-size groups of consecutive splits (64; 4 here to keep the test small), still folded in
    # split order, in the same job
    monkeypatch.setattr(spark_reduce, "UNKNOWN_N_GROUP", 4)
    monkeypatch.setattr(spark_reduce, "FOLD_STREAMS_ON_DRIVER", False)  # under Connect: the tree, not the driver
    df = spark.range(0, 3000, 1, numPartitions=2).repartition(10)
    task = _worker.SplitTask(func=split_sums, args=(), kwargs={}, chunked=False)
    outcomes = spark_ctx.run_splits(
        SplitWork(task, _serde.dumps(task), sd.SparkData(df).prepare(spark_ctx), _serde.dumps(add))
    )
    assert [split for split, _, _ in outcomes] == [0, 4, 8]  # 10 splits in groups of 4
    per_split = sd.distribute_job(split_sums, df, compute_context=spark_ctx)
    assert len(per_split) == 10
    assert [v for _, _, part in outcomes for v in part] == [v for part in per_split for v in part]
    assert sum(v for part in per_split for v in part) == sum(range(3000))


def test_the_driver_folds_few_or_streamed_results_in_split_order(spark, spark_ctx):
    # 40 splits (classic: known, at most DRIVER_FOLD_MAX; Connect: streamed) with a reduce that is
    # associative but not commutative: one outcome, in split order
    df = spark.range(0, 4000, 1, numPartitions=40)
    task = _worker.SplitTask(func=split_sums, args=(), kwargs={}, chunked=False)
    outcomes = spark_ctx.run_splits(
        SplitWork(task, _serde.dumps(task), sd.SparkData(df).prepare(spark_ctx), _serde.dumps(add))
    )
    assert len(outcomes) == 1
    assert outcomes[0].value == [sum(range(i * 100, (i + 1) * 100)) for i in range(40)]


def test_planned_parquet_splits_reduce_in_a_tree(spark_ctx, parquet_dir):
    src = sd.ParquetData(parquet_dir, split_bytes=1)  # 20 splits of one row group each
    task = _worker.SplitTask(func=len, args=(), kwargs={}, chunked=False)
    outcomes = spark_ctx.run_splits(SplitWork(task, _serde.dumps(task), src.prepare(spark_ctx), _serde.dumps(add)))
    assert len(outcomes) == 4 and sum(v for _, _, v in outcomes) == 20_000


def test_spark_context_is_distributed(spark, spark_ctx, parquet_dir, numbers):
    assert sd.is_distributed_context(spark_ctx)
    assert sd.is_distributed_context(spark_ctx, data=spark.range(3))
    assert sd.is_distributed_context(spark_ctx, data=sd.ParquetData(parquet_dir))
    assert sd.is_distributed_context(spark_ctx, data=str(parquet_dir))
    assert not sd.is_distributed_context(spark_ctx, data=numbers)


def test_dataframe_of_another_session_is_not_compatible(spark, spark_ctx, spark_mode):
    session = spark.newSession()
    try:
        other = session.range(3)
        assert not sd.is_distributed_context(spark_ctx, data=other)
        with pytest.raises(sd.DataSourceError, match="belongs to another SparkSession"):
            sd.distribute_job(len, other, compute_context=spark_ctx)
    finally:
        if spark_mode.startswith("connect"):
            # release this client now: stopping it would end the shared local server, and a client
            # left open retries against the stopped server at interpreter exit
            session.client.release_session()
            session.client.close()


def test_default_context_wraps_the_active_session(spark, spark_ctx):
    ctx = sd.get_compute_context()
    assert isinstance(ctx, sd.SparkComputeContext) and ctx.session is spark
    assert sd.get_compute_context() is ctx  # the wrapper is reused
    assert sd.distribute_job(len, spark.range(10, numPartitions=3), reduce=add) == 10


def test_wrapped_session_is_not_stopped_by_the_context(spark, spark_ctx):
    sd.SparkComputeContext(spark).stop()
    assert spark.range(2).count() == 2


def test_chunked_spark_dataframe_streams_batches(spark, spark_ctx):
    df = spark.range(0, 50_000, 1, numPartitions=2)

    def count(chunks):
        sizes = [len(c) for c in chunks]
        return np.array([len(sizes), sum(sizes)])

    n_chunks, n_rows = sd.distribute_job(count, df, chunked=True, reduce=add, compute_context=spark_ctx)
    assert n_rows == 50_000 and n_chunks >= 2


def test_spark_level_failures_are_condensed(spark, spark_ctx):
    # A result whose pickling fails on the executor is reported, not a JVM page
    def unpicklable(split):
        import threading

        return threading.Lock()

    with pytest.raises(sd.JobError) as info:
        sd.distribute_job(unpicklable, spark.range(4, numPartitions=2), compute_context=spark_ctx)
    assert "lock" in str(info.value) and "at org.apache" not in str(info.value)


def _run(
    script: str, tmp_path: Path, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(script))
    full_env = {**os.environ, "SPARK_CONF_DIR": str(ROOT / "conf"), **(env or {})}
    return subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.modes("local", "connect")
@pytest.mark.slow
def test_stopped_session_is_a_clear_error(tmp_path, spark_mode):
    # Stopping a session ends the shared one in local and local-Connect mode: use another process.
    where = 'remote="local[1]"' if spark_mode == "connect" else 'master="local[1]"'
    out = _run(
        f"""
        import sparkdist as sd
        ctx = sd.SparkComputeContext({where})
        assert sd.distribute_job(len, ctx.session.range(5), reduce=lambda a, b: a + b, compute_context=ctx) == 5
        ctx.stop()
        try:
            sd.distribute_job(len, [1], compute_context=ctx)
        except sd.SessionStoppedError as err:
            print("OK:", err)
        """,
        tmp_path,
        # an ephemeral port for that process's own local Connect server (this one holds 15002)
        env={"SPARK_TESTING": "1"} if spark_mode == "connect" else None,
    )
    assert "OK: the SparkSession of" in out.stdout and "has been stopped" in out.stdout, out.stderr[-3000:]


HIDE = """
import importlib.util, os, runpy, sys
root = {root!r}
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != root]
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
assert importlib.util.find_spec("sparkdist") is None, "sparkdist is still importable"
args = sys.argv[1:]
if args[:1] == ["-m"]:
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""


@pytest.mark.modes("local")
@pytest.mark.slow
def test_executors_without_sparkdist_get_it_shipped(tmp_path):
    hide = tmp_path / "hide.py"
    hide.write_text(HIDE.format(root=str(ROOT)))
    launcher = tmp_path / "python-without-sparkdist"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{hide}" "$@"\n')
    launcher.chmod(0o755)
    out = _run(
        """
        import sparkdist as sd
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.master("local[1]").getOrCreate()
        plain = sd.SparkComputeContext(spark, ship_package=False)
        try:
            sd.distribute_job(len, spark.range(4), compute_context=plain)
            print("UNEXPECTED: executors could import sparkdist")
        except sd.JobError as err:
            print("WITHOUT:", err.remote_message)
        auto = sd.SparkComputeContext(spark)  # executors run another Python: ships the package
        print("WITH:", sd.distribute_job(len, spark.range(4), reduce=lambda a, b: a + b, compute_context=auto))
        spark.stop()
        """,
        tmp_path,
        env={"PYSPARK_PYTHON": str(launcher)},
    )
    assert "WITHOUT: No module named 'sparkdist'" in out.stdout, out.stdout + out.stderr[-3000:]
    assert "WITH: 4" in out.stdout, out.stdout + out.stderr[-3000:]


def test_tree_reduce_handles_results_cut_into_parts(spark, spark_ctx):
    # each split returns ~9 MB (3 parts); the reduce stage must reassemble them
    def big(split):
        return np.full(1_100_000, float(len(split)))

    got = sd.distribute_job(big, spark.range(0, 12, 1, numPartitions=6), reduce=add, compute_context=spark_ctx)
    np.testing.assert_array_equal(got, np.full(1_100_000, 12.0))


def test_functools_partial_as_func(spark, spark_ctx):
    def scaled(split, factor):
        return int(split["id"].sum()) * factor

    got = sd.distribute_job(
        functools.partial(scaled, factor=3), spark.range(10, numPartitions=3), reduce=add, compute_context=spark_ctx
    )
    assert got == 135
