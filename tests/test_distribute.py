"""distribute_job: the same answers in every compute context (run once per context kind)."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkdist as sd
from sparkdist import _reduce


def moments(split: pd.DataFrame) -> np.ndarray:
    x = split["x"].dropna().to_numpy()
    return np.array([len(split), len(x), x.sum(), (x * x).sum()])


def add(a, b):
    return a + b


class Box:
    """A user class as a result: must come back as itself."""

    def __init__(self, rows: int, first: float) -> None:
        self.rows, self.first = rows, first


def to_box(split: pd.DataFrame) -> Box:
    return Box(len(split), float(split["k"].iloc[0]))


def reference(numbers: pd.DataFrame) -> np.ndarray:
    x = numbers["x"].dropna().to_numpy()
    return np.array([len(numbers), len(x), x.sum(), (x * x).sum()])


def as_data(kind: str, ctx, numbers: pd.DataFrame, parquet_dir: Path):
    if kind == "pandas":
        return numbers
    if kind == "parquet":
        return str(parquet_dir)
    if kind == "spark":
        if not ctx.is_distributed:
            pytest.skip("a Spark DataFrame needs a Spark context in this process")
        return ctx.session.read.parquet(str(parquet_dir)).repartition(6)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["pandas", "parquet", "spark"])
def test_reduce_matches_numpy(ctx, kind, numbers, parquet_dir):
    data = as_data(kind, ctx, numbers, parquet_dir)
    got = sd.distribute_job(moments, data, reduce=add, compute_context=ctx)
    np.testing.assert_allclose(got, reference(numbers), rtol=1e-12)


@pytest.mark.parametrize("kind", ["pandas", "parquet", "spark"])
def test_list_of_results_covers_every_row_once(ctx, kind, numbers, parquet_dir):
    data = as_data(kind, ctx, numbers, parquet_dir)
    parts = sd.distribute_job(lambda s: s["k"].to_numpy(), data, compute_context=ctx)
    assert isinstance(parts, list) and len(parts) >= 1
    assert sorted(np.concatenate(parts).tolist()) == sorted(numbers["k"].tolist())


def test_parquet_results_come_in_split_order(ctx, parquet_dir, numbers):
    # Files are named in row order and splits are runs of consecutive row groups,
    # so concatenating per-split results gives back the rows in file order.
    parts = sd.distribute_job(lambda s: s["k"].to_numpy(), parquet_dir, compute_context=ctx)
    assert np.concatenate(parts).tolist() == numbers["k"].tolist()


def test_non_commutative_reduce_keeps_split_order(ctx, parquet_dir, numbers):
    # list concatenation is associative but not commutative: the tree must keep the order.
    # One row group per split: 20 splits, so the Spark tree has 4 groups of 5.
    src = sd.ParquetData(parquet_dir, split_bytes=1)
    assert src.validate(ctx).n_splits == 20
    got = sd.distribute_job(lambda s: s["k"].tolist(), src, reduce=add, compute_context=ctx)
    assert got == numbers["k"].tolist()


def test_chunked_receives_an_iterator_of_chunks(ctx, parquet_dir, numbers):
    def count_chunks(chunks):
        # no `assert` in code that runs on executors: pytest rewrites it to call _pytest, which
        # executors without pytest (the standalone and connect-server modes) cannot import
        if isinstance(chunks, pd.DataFrame):
            raise TypeError("chunked=True passed a whole DataFrame")
        sizes = [len(c) for c in chunks]
        return np.array([len(sizes), sum(sizes)])

    src = sd.ParquetData(parquet_dir, rows_per_chunk=700)
    n_chunks, n_rows = sd.distribute_job(count_chunks, src, chunked=True, reduce=add, compute_context=ctx)
    assert n_rows == len(numbers)
    assert n_chunks >= len(numbers) // 700


def test_args_and_kwargs_reach_func(ctx, numbers):
    def scaled(split, factor, *, offset):
        return float((split["k"] * factor + offset).sum())

    got = sd.distribute_job(scaled, numbers, 2, offset=1, reduce=add, compute_context=ctx)
    assert got == pytest.approx(float((numbers["k"] * 2 + 1).sum()))


def test_columns_limits_what_func_sees(ctx, parquet_dir):
    seen = sd.distribute_job(lambda s: tuple(s.columns), parquet_dir, columns=["k"], compute_context=ctx)
    assert set(seen) == {("k",)}


def test_user_objects_come_back(ctx, numbers):
    boxes = sd.distribute_job(to_box, numbers, compute_context=ctx)
    assert all(isinstance(b, Box) for b in boxes)
    assert sum(b.rows for b in boxes) == len(numbers)
    assert boxes[0].first == float(numbers["k"].iloc[0])


def test_large_result_comes_back_intact(ctx, numbers):
    # 24 MB per result: several transfer parts, and more than a default Connect message
    def big(split):
        return np.arange(3_000_000, dtype=np.float64) + 7.0

    out = sd.distribute_job(big, numbers.iloc[:10], compute_context=ctx)
    assert len(out) >= 1
    for arr in out:
        np.testing.assert_array_equal(arr, np.arange(3_000_000, dtype=np.float64) + 7.0)


def test_empty_data_never_calls_func(ctx, numbers):
    calls = sd.distribute_job(lambda s: 1 / 0, numbers.iloc[:0], compute_context=ctx)
    assert calls == []


def test_reduce_over_empty_data_is_a_clear_error(ctx, numbers):
    with pytest.raises(sd.EmptyDataError, match="nothing to reduce"):
        sd.distribute_job(len, numbers.iloc[:0], reduce=add, compute_context=ctx)


def test_filters_that_remove_every_row(ctx, parquet_dir):
    src = sd.ParquetData(parquet_dir, filters=[("k", ">", 10_000)])
    assert sd.distribute_job(len, src, compute_context=ctx) == []
    with pytest.raises(sd.EmptyDataError, match="filters"):
        sd.distribute_job(len, src, reduce=add, compute_context=ctx)


def failing(split):
    if len(split) > 0:
        raise ZeroDivisionError("boom in user code")


def test_user_exception_becomes_job_error(ctx, numbers):
    with pytest.raises(sd.JobError) as info:
        sd.distribute_job(failing, numbers, compute_context=ctx)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.remote_type == "ZeroDivisionError"
    assert err.remote_message == "boom in user code"
    assert "in failing" in err.remote_traceback and "raise ZeroDivisionError" in err.remote_traceback
    text = str(err)
    assert "ZeroDivisionError: boom in user code" in text and "'failing'" in text
    assert "Py4J" not in text and "org.apache" not in text and "at java" not in text
    assert pickle.loads(pickle.dumps(err)).remote_traceback == err.remote_traceback


def test_reduce_exception_names_reduce(ctx, parquet_dir):
    def bad_reduce(a, b):
        raise ValueError("cannot merge")

    with pytest.raises(sd.JobError, match="bad_reduce.*ValueError: cannot merge"):
        sd.distribute_job(len, sd.ParquetData(parquet_dir, split_bytes=1), reduce=bad_reduce, compute_context=ctx)


def test_context_is_usable_after_a_failure(ctx, numbers):
    with pytest.raises(sd.JobError):
        sd.distribute_job(failing, numbers, compute_context=ctx)
    assert sd.distribute_job(len, numbers, reduce=add, compute_context=ctx) == len(numbers)


def test_current_context_is_used_by_default(ctx, numbers):
    with ctx:
        assert sd.get_compute_context() is ctx
        assert sd.distribute_job(len, numbers, reduce=add) == len(numbers)


def test_jobs_from_several_threads(ctx, numbers):
    results: dict[int, int] = {}

    def run(i: int) -> None:
        results[i] = sd.distribute_job(
            lambda s: int(s["k"].sum()) * 0 + len(s) * i, numbers, reduce=add, compute_context=ctx
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: len(numbers) * i for i in range(1, 4)}


# -- bad input: clear errors naming the argument, before any work -------------------------------


def test_func_not_callable(ctx, numbers):
    with pytest.raises(sd.ArgumentTypeError, match="func must be callable, got int"):
        sd.distribute_job(42, numbers, compute_context=ctx)


def test_reduce_not_callable(ctx, numbers):
    with pytest.raises(TypeError, match="reduce must be callable or None, got str"):
        sd.distribute_job(len, numbers, reduce="sum", compute_context=ctx)


def test_unsupported_data_type(ctx):
    with pytest.raises(sd.ArgumentTypeError, match=r"data must be .* got builtins\.dict"):
        sd.distribute_job(len, {"x": [1]}, compute_context=ctx)


def test_missing_columns_are_named(ctx, numbers, parquet_dir):
    for data in (numbers, parquet_dir):
        with pytest.raises(
            sd.ColumnNotFoundError, match=r"\['nope'\] are not in the data; available columns: \['x', 'k', 'g'\]"
        ):
            sd.distribute_job(len, data, columns=["x", "nope"], compute_context=ctx)


def test_compute_context_not_a_context(numbers):
    with pytest.raises(sd.ArgumentTypeError, match="compute_context must be a sparkdist ComputeContext.*got str"):
        sd.distribute_job(len, numbers, compute_context="local")


def test_unpicklable_func_names_the_culprit(ctx, numbers):
    if isinstance(ctx, sd.LocalComputeContext):
        pytest.skip("the in-process context never pickles func")
    lock = threading.Lock()

    def uses_lock(split):
        with lock:
            return len(split)

    with pytest.raises(
        sd.NotPicklableError,
        match=r"func 'test_unpicklable_func_names_the_culprit.<locals>.uses_lock'.*captured variable 'lock' of type lock",
    ):
        sd.distribute_job(uses_lock, numbers, compute_context=ctx)


def test_unpicklable_argument_is_named(ctx, numbers):
    if isinstance(ctx, sd.LocalComputeContext):
        pytest.skip("the in-process context never pickles arguments")
    with pytest.raises(sd.NotPicklableError, match=r"keyword arguments \(\*\*kwargs\).*key 'guard'"):
        sd.distribute_job(lambda s, guard: len(s), numbers, guard=threading.Lock(), compute_context=ctx)


def test_chunked_must_be_bool(ctx, numbers):
    with pytest.raises(sd.ArgumentTypeError, match="chunked must be True or False"):
        sd.distribute_job(len, numbers, chunked="yes", compute_context=ctx)


def test_group_size_is_about_sqrt():
    for n in (3, 10, 50, 99, 1000, 12345):
        g = _reduce.group_size(n)
        groups = -(-n // g)
        assert g * g >= n and groups <= g + 1
