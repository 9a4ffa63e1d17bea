"""The data a user passes is never modified, whatever the function does to what it is given: pandas
frames (and arguments) in every context, Parquet files on disk (checksums before and after), Spark
DataFrames — for plain, chunked and reduce jobs, exec_job and pema_compute."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

import sparkdist as sd
from sparkdist.pema import PemaAlgorithm, pema_compute


def vandalize(frame: pd.DataFrame) -> int:
    """Everything a careless function does to a frame in place."""
    n = len(frame)
    values = frame["a"].to_numpy()
    if values.flags.writeable:
        values *= 2
    frame["a"] = -1.0
    frame.loc[frame.index[:1], "b"] = "changed"
    del frame["b"]
    frame.index = frame.index[::-1]
    return n


def vandalize_chunks(chunks) -> int:
    return sum(vandalize(c) for c in chunks)


def vandalize_arg(i: int, frame: pd.DataFrame, rows: list[int]) -> int:
    rows.append(i)
    return vandalize(frame)


class Vandal(PemaAlgorithm):
    def initialize(self) -> None:
        self.rows = 0

    def process_data(self, chunk: pd.DataFrame) -> None:
        self.rows += vandalize(chunk)

    def update_results(self, other: Vandal) -> None:
        self.rows += other.rows

    def process_results(self) -> int:
        return self.rows


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["x", "y"], 300)})


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run_everything(data, ctx) -> None:
    add = lambda x, y: x + y  # noqa: E731
    assert sum(sd.distribute_job(vandalize, data, compute_context=ctx)) == 300
    assert sum(sd.distribute_job(vandalize_chunks, data, chunked=True, compute_context=ctx)) == 300
    assert sd.distribute_job(vandalize, data, reduce=add, compute_context=ctx) == 300
    assert pema_compute(Vandal(), data, compute_context=ctx) == 300


def test_pandas_data_and_arguments_are_never_modified(ctx):
    data, before = frame(), frame()
    run_everything(data, ctx)
    rows: list[int] = []
    assert sd.exec_job(vandalize_arg, data, rows, elem_args=[0, 1], compute_context=ctx) == [300, 300]
    pd.testing.assert_frame_equal(data, before)
    assert rows == []


def test_parquet_files_are_never_modified(ctx, tmp_path):
    frame().to_parquet(tmp_path / "part-0.parquet", row_group_size=70)
    before = digest(tmp_path)
    run_everything(sd.ParquetData(tmp_path), ctx)
    if getattr(ctx, "spark_session", None) is not None:
        run_everything(sd.ParquetData(tmp_path, engine="spark"), ctx)
    assert digest(tmp_path) == before


def test_spark_dataframes_are_never_modified(spark, spark_ctx):
    df = spark.createDataFrame(frame()).repartition(3)
    before = df.toPandas().sort_values("a", ignore_index=True)
    run_everything(df, spark_ctx)
    pd.testing.assert_frame_equal(df.toPandas().sort_values("a", ignore_index=True), before)
    assert df.columns == ["a", "b"]
