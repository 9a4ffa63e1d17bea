"""A table of misuses across the public API: each gets a sparkdist error naming the argument or
value, raised before any work starts; afterwards the same context runs a correct job."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

import sparkdist as sd
from sparkdist.pema import (
    Crosstab,
    KMeans,
    LinearRegression,
    LogisticRegression,
    Mean,
    PemaAlgorithm,
    Summary,
    pema_compute,
)

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.1, 5.9, 8.2], "s": ["a", "b", "a", "b"]})


def _half_algorithm():
    class Half(PemaAlgorithm):
        def initialize(self):
            pass

    return Half()


def _locked():
    lock = threading.Lock()
    return lambda split: lock


# (id, call(ctx, tmp_path), error class, text the message must contain)
MISUSES = [
    ("context-not-a-context", lambda c, t: sd.set_compute_context("spark"), sd.ArgumentTypeError, "compute_context"),
    ("parallel-workers-zero", lambda c, t: sd.LocalParallelComputeContext(0), sd.InvalidArgumentError, "n_workers"),
    (
        "spark-master-and-remote",
        lambda c, t: sd.SparkComputeContext(master="local", remote="local"),
        sd.InvalidArgumentError,
        "master",
    ),
    (
        "spark-executors-negative",
        lambda c, t: sd.SparkComputeContext(num_executors=-1),
        sd.InvalidArgumentError,
        "num_executors",
    ),
    ("spark-session-wrong-type", lambda c, t: sd.SparkComputeContext("session"), sd.ArgumentTypeError, "session"),
    (
        "spark-config-not-mapping",
        lambda c, t: sd.SparkComputeContext(spark_config="a=b"),
        sd.ArgumentTypeError,
        "spark_config",
    ),
    ("context-wait-not-bool", lambda c, t: sd.LocalComputeContext(wait="yes"), sd.ArgumentTypeError, "wait"),
    (
        "context-max-result-size-unit",
        lambda c, t: sd.LocalParallelComputeContext(1, max_result_size="2 lots"),
        sd.InvalidArgumentError,
        "max_result_size",
    ),
    (
        "context-max-result-size-zero",
        lambda c, t: setattr(c, "max_result_size", 0),
        sd.InvalidArgumentError,
        "max_result_size",
    ),
    ("parquet-path-missing", lambda c, t: sd.ParquetData(t / "nope").validate(), sd.DataNotFoundError, "nope"),
    ("parquet-path-type", lambda c, t: sd.ParquetData(3.5), sd.ArgumentTypeError, "path"),
    ("parquet-engine", lambda c, t: sd.ParquetData(t, engine="duck"), sd.InvalidArgumentError, "engine"),
    ("parquet-filters-form", lambda c, t: sd.ParquetData(t, filters="x > 1"), sd.InvalidArgumentError, "filters"),
    (
        "parquet-rows-per-chunk",
        lambda c, t: sd.ParquetData(t, rows_per_chunk=-5),
        sd.InvalidArgumentError,
        "rows_per_chunk",
    ),
    ("spark-data-not-dataframe", lambda c, t: sd.SparkData(FRAME), sd.ArgumentTypeError, "SparkData"),
    (
        "distribute-func-not-callable",
        lambda c, t: sd.distribute_job("len", FRAME, compute_context=c),
        sd.ArgumentTypeError,
        "func",
    ),
    (
        "distribute-reduce-not-callable",
        lambda c, t: sd.distribute_job(len, FRAME, reduce=1, compute_context=c),
        sd.ArgumentTypeError,
        "reduce",
    ),
    (
        "distribute-data-type",
        lambda c, t: sd.distribute_job(len, {"x": 1}, compute_context=c),
        sd.ArgumentTypeError,
        "data",
    ),
    (
        "distribute-missing-column",
        lambda c, t: sd.distribute_job(len, FRAME, columns=["zz"], compute_context=c),
        sd.ColumnNotFoundError,
        "zz",
    ),
    (
        "distribute-columns-str",
        lambda c, t: sd.distribute_job(len, FRAME, columns="x", compute_context=c),
        sd.ArgumentTypeError,
        "columns",
    ),
    (
        "distribute-chunked-not-bool",
        lambda c, t: sd.distribute_job(len, FRAME, chunked=1, compute_context=c),
        sd.ArgumentTypeError,
        "chunked",
    ),
    (
        "distribute-wait-not-bool",
        lambda c, t: sd.distribute_job(len, FRAME, wait="no", compute_context=c),
        sd.ArgumentTypeError,
        "wait",
    ),
    (
        "distribute-context-type",
        lambda c, t: sd.distribute_job(len, FRAME, compute_context=42),
        sd.ArgumentTypeError,
        "compute_context",
    ),
    (
        "distribute-empty-reduce",
        lambda c, t: sd.distribute_job(len, FRAME.iloc[:0], reduce=max, compute_context=c),
        sd.EmptyDataError,
        "nothing to reduce",
    ),
    (
        "exec-elem-args-type",
        lambda c, t: sd.exec_job(len, elem_args=7, compute_context=c),
        sd.ArgumentTypeError,
        "elem_args",
    ),
    (
        "exec-times-zero",
        lambda c, t: sd.exec_job(len, times_to_run=0, compute_context=c),
        sd.InvalidArgumentError,
        "times_to_run",
    ),
    (
        "exec-times-disagree",
        lambda c, t: sd.exec_job(len, elem_args=[[1]], times_to_run=2, compute_context=c),
        sd.InvalidArgumentError,
        "times_to_run",
    ),
    (
        "exec-chunk-size",
        lambda c, t: sd.exec_job(len, times_to_run=2, task_chunk_size=0, compute_context=c),
        sd.InvalidArgumentError,
        "task_chunk_size",
    ),
    (
        "exec-seed-type",
        lambda c, t: sd.exec_job(len, times_to_run=2, rng_seed="7", compute_context=c),
        sd.ArgumentTypeError,
        "rng_seed",
    ),
    (
        "exec-func-not-callable",
        lambda c, t: sd.exec_job(None, times_to_run=2, compute_context=c),
        sd.ArgumentTypeError,
        "func",
    ),
    (
        "exec-flag-not-bool",
        lambda c, t: sd.exec_job(len, times_to_run=2, console_output="y", compute_context=c),
        sd.ArgumentTypeError,
        "console_output",
    ),
    ("jobs-as-completed-type", lambda c, t: list(sd.as_completed([1, 2])), sd.ArgumentTypeError, "as_completed"),
    ("pema-not-algorithm", lambda c, t: pema_compute(Summary, FRAME, compute_context=c), sd.ArgumentTypeError, "algo"),
    (
        "pema-missing-override",
        lambda c, t: pema_compute(_half_algorithm(), FRAME, compute_context=c),
        sd.ArgumentTypeError,
        "process_data",
    ),
    ("pema-non-numeric", lambda c, t: pema_compute(Mean("s"), FRAME, compute_context=c), sd.ArgumentTypeError, "'s'"),
    (
        "pema-missing-column",
        lambda c, t: pema_compute(Summary(["x", "q"]), FRAME, compute_context=c),
        sd.ColumnNotFoundError,
        "'q'",
    ),
    (
        "pema-singular",
        lambda c, t: pema_compute(
            LinearRegression("y", ["x", "x2"]), FRAME.assign(x2=FRAME["x"] * 3), compute_context=c
        ),
        sd.InvalidArgumentError,
        "'x2'",
    ),
    (
        "pema-k-too-large",
        lambda c, t: pema_compute(KMeans(["x"], 9), FRAME, compute_context=c),
        sd.InvalidArgumentError,
        "k=9",
    ),
    ("pema-k-zero", lambda c, t: KMeans(["x"], 0), sd.InvalidArgumentError, "k="),
    ("pema-init-shape", lambda c, t: KMeans(["x"], 2, init=[[1.0, 2.0]]), sd.InvalidArgumentError, "init"),
    ("pema-logit-tol", lambda c, t: LogisticRegression("y", ["x"], tol=-1), sd.InvalidArgumentError, "tol"),
    ("pema-crosstab-col-type", lambda c, t: Crosstab("s", 3), sd.ArgumentTypeError, "col"),
    ("pema-regression-x-str", lambda c, t: LinearRegression("y", "x"), sd.ArgumentTypeError, "x="),
]


@pytest.mark.parametrize(("name", "call", "error", "text"), MISUSES, ids=[m[0] for m in MISUSES])
def test_misuse_gets_a_clear_error_and_the_context_still_works(ctx, tmp_path, name, call, error, text):
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error) as info:
        call(ctx, tmp_path)
    assert isinstance(info.value, sd.SparkDistError)
    assert text in str(info.value), str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing was written
    assert sd.distribute_job(len, FRAME, reduce=lambda a, b: a + b, compute_context=ctx) == len(FRAME)


def test_there_are_at_least_thirty_distinct_misuses():
    assert len({m[0] for m in MISUSES}) >= 30


def test_unpicklable_func_before_any_job(ctx):
    if isinstance(ctx, sd.LocalComputeContext):
        pytest.skip("the in-process context never pickles func")
    with pytest.raises(sd.NotPicklableError, match="captured variable 'lock'"):
        sd.distribute_job(_locked(), FRAME, compute_context=ctx)
