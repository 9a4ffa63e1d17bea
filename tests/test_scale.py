"""Planning and reading at scale: chunks that cross files, a worker's memory that does not grow with
its split, many planned splits sent as DataFrame rows, and ``rows_per_chunk`` checked."""

from __future__ import annotations

import json
import operator
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sparkdist as sd
from sparkdist.sources.base import DataSource, LocalSplit, ValidationReport

# -- rows_per_chunk --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -3, 1.5, 100.0, True, "100", [100]])
def test_rows_per_chunk_must_be_a_positive_int(tmp_path, bad):
    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(sd.InvalidArgumentError, match=re.escape(f"rows_per_chunk must be a positive int, got {bad!r}")):
        sd.ParquetData(tmp_path, rows_per_chunk=bad)


def test_rows_per_chunk_takes_numpy_ints(tmp_path):
    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "a.parquet")
    assert sd.ParquetData(tmp_path, rows_per_chunk=np.int64(10)).rows_per_chunk == 10


# -- chunks across files ---------------------------------------------------------------------------


@pytest.fixture
def small_files(tmp_path):
    """12 files of 1,000 rows in two hive folders; the second folder's files have a large_string
    column and lack the column ``z``."""
    for i in range(12):
        folder = tmp_path / f"part={i // 6}"
        folder.mkdir(exist_ok=True)
        cols = {"x": np.arange(i * 1000, (i + 1) * 1000, dtype=np.float64), "s": [f"r{i}"] * 1000}
        if i < 6:
            cols["z"] = np.ones(1000)
        table = pa.table(cols)
        if i >= 6:
            table = table.cast(pa.schema([("x", pa.float64()), ("s", pa.large_string())]))
        pq.write_table(table, folder / f"f{i:02d}.parquet")
    return tmp_path


def test_chunks_are_exactly_rows_per_chunk_across_files(small_files):
    splits = sd.ParquetData(small_files, rows_per_chunk=2500).plan(1)
    assert len(splits) == 1
    chunks = list(splits[0].chunks())
    assert [len(c) for c in chunks] == [2500] * 4 + [2000]
    whole = pd.concat(chunks, ignore_index=True)
    np.testing.assert_array_equal(whole["x"], np.arange(12_000.0))
    assert whole["part"].tolist() == [0] * 6000 + [1] * 6000
    assert whole["z"].isna().tolist() == [False] * 6000 + [True] * 6000
    assert whole["s"].tolist() == [f"r{i}" for i in range(12) for _ in range(1000)]


def test_filters_and_columns_across_files(small_files):
    src = sd.ParquetData(small_files, columns=["x"], filters=[("part", "=", 1), ("x", "<", 7500)], rows_per_chunk=700)
    chunks = [c for split in src.plan(1) for c in split.chunks()]
    assert all(list(c.columns) == ["x"] for c in chunks)
    assert [len(c) for c in chunks] == [700, 700, 100]
    np.testing.assert_array_equal(pd.concat(chunks)["x"], np.arange(6000.0, 7500.0))


def test_chunked_job_sees_chunks_of_rows_per_chunk(ctx, small_files):
    def sizes(chunks):
        return [len(c) for c in chunks]

    got = sd.distribute_job(sizes, sd.ParquetData(small_files, rows_per_chunk=1500), chunked=True, compute_context=ctx)
    flat = [n for part in got for n in part]
    assert sum(flat) == 12_000 and max(flat) == 1500


# -- a worker's memory does not grow with its split --------------------------------------------------

_PEAK = textwrap.dedent(
    """
    import json, sys, threading
    import psutil
    import sparkdist as sd

    path, split_bytes = sys.argv[1], int(sys.argv[2])
    split = sd.ParquetData(path, rows_per_chunk=50_000, split_bytes=split_bytes).plan(1)[0]
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak, done = [base], threading.Event()

    def sample():
        while not done.wait(0.001):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rows = 0
    for chunk in split.chunks():
        rows += len(chunk)
        chunk.to_numpy().sum()
    done.set()
    sampler.join()
    print(json.dumps({"rows": rows, "growth": peak[0] - base}))
    """
)


def test_worker_memory_does_not_grow_with_the_split(tmp_path):
    """A split of 1 row group and one of 4 (20 MB each), each read in a fresh process: the peak RSS
    over the process's start grows by less than 60 MB between them (about 25 MB of allocator warm-up
    here; the reader before 0.2 held the row groups of a file it had read and grew by about 140 MB)."""
    rg = 250_000
    schema = pa.schema([(f"x{j}", pa.float64()) for j in range(10)])
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(tmp_path / "big.parquet", schema) as writer:
        for _ in range(4):
            writer.write_table(pa.table({f"x{j}": rng.standard_normal(rg) for j in range(10)}, schema=schema))

    def growth(split_bytes: int) -> tuple[int, int]:
        env = {**os.environ, "PYTHONPATH": str(Path(sd.__file__).resolve().parent.parent)}  # this sparkdist
        out = subprocess.run(
            [sys.executable, "-c", _PEAK, str(tmp_path), str(split_bytes)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        found = json.loads(out.stdout.strip().splitlines()[-1])
        return found["rows"], found["growth"]

    rows_small, small = growth(rg * 80)  # one row group per split
    rows_large, large = growth(2**30)  # all four in one split
    assert (rows_small, rows_large) == (rg, 4 * rg)
    assert large - small < 60 * 2**20, f"peak RSS growth {small / 2**20:.0f} MB -> {large / 2**20:.0f} MB"


# -- many planned splits ---------------------------------------------------------------------------


class _Row(LocalSplit):
    """A split of one row (the frame is made once per process)."""

    frame: pd.DataFrame | None = None

    def __init__(self, i: int) -> None:
        self.i = i

    def chunks(self) -> Iterator[pd.DataFrame]:
        if _Row.frame is None:
            _Row.frame = pd.DataFrame({"one": [1]})
        yield _Row.frame


class _ManySplits(DataSource):
    """``n`` splits of one row each, read by the tasks themselves."""

    columns = None

    def __init__(self, n: int) -> None:
        self.n = n

    def column_names(self) -> list[str]:
        return ["one"]

    def with_columns(self, columns: Any) -> _ManySplits:
        return self

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([("one", pa.int64())])

    def plan(self, slots: int) -> list[LocalSplit]:
        return [_Row(i) for i in range(self.n)]

    def describe(self, slots: int) -> ValidationReport:
        return ValidationReport("many", self.n, self.n, None, 0, None, [("one", "int64")])

    def readable_on(self, session: Any) -> bool:
        return True


def _count(chunks):
    return sum(len(c) for c in chunks)


@pytest.mark.parametrize("reduce", [operator.add, None], ids=["reduce", "no-reduce"])
def test_100000_splits_travel_as_rows(spark_ctx, monkeypatch, reduce):
    """100,000 planned splits: sent as one DataFrame row per task (about √n tasks of about √n splits),
    not inside the function every task receives; the driver does not balloon."""
    import psutil

    from sparkdist.spark import running

    n = 100_000 if reduce is not None else 5_000  # without a reduce every split's outcome comes back
    made: list[int] = []
    split_rows = running.split_rows

    def spy(session, splits, size):
        frame = split_rows(session, splits, size)
        made.append(-(-len(splits) // size))
        return frame

    monkeypatch.setattr(running, "split_rows", spy)
    before = psutil.Process().memory_info().rss
    got = sd.distribute_job(_count, _ManySplits(n), chunked=True, reduce=reduce, compute_context=spark_ctx)
    grew = psutil.Process().memory_info().rss - before
    assert (got if reduce is not None else sum(got)) == n
    assert made and made[0] <= 2 * int(np.sqrt(n)) + 2, made
    assert grew < 300 * 2**20, f"the driver grew by {grew / 2**20:.0f} MB"


def test_few_splits_stay_inside_the_function(spark_ctx, monkeypatch):
    from sparkdist.spark import running

    monkeypatch.setattr(running, "split_rows", lambda *a: pytest.fail("a few splits went as rows"))
    assert (
        sd.distribute_job(_count, _ManySplits(50), chunked=True, reduce=operator.add, compute_context=spark_ctx) == 50
    )
