"""Arrow and polars inputs, and table names of the Spark catalog, as ``data``: the same answers as the
pandas / Parquet inputs in every context. Executors of the server modes have no polars: frames are
collected on the driver."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import sparkdist as sd
from sparkdist.pema import LinearRegression, pema_compute
from sparkdist.sources import as_data_source
from sparkdist.sources.arrow import ArrowData, ArrowDatasetData
from sparkdist.sources.tables import NamedData

pl = pytest.importorskip("polars", reason="polars is not installed")


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 6000
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "store": rng.integers(0, 5, n).astype(np.int64),
            "x": x,
            "y": 2.0 + 3.0 * x + rng.normal(scale=0.1, size=n),
            "kind": rng.choice(["a", "b", "c"], n),
        }
    )


@pytest.fixture(scope="module")
def sales_dir(tmp_path_factory: pytest.TempPathFactory, sales: pd.DataFrame) -> Path:
    """``sales`` in hive folders store=<n>/, several row groups each."""
    root = tmp_path_factory.mktemp("sales")
    for store, part in sales.groupby("store"):
        folder = root / f"store={store}"
        folder.mkdir()
        pq.write_table(pa.Table.from_pandas(part.drop(columns="store"), preserve_index=False), folder / "p.parquet",
                       row_group_size=300)  # fmt: skip
    return root


def inputs(sales: pd.DataFrame, sales_dir: Path) -> dict[str, Any]:
    table = pa.Table.from_pandas(sales, preserve_index=False)
    return {
        "arrow table": table,
        "record batch reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1000)),
        "parquet dataset": pads.dataset(sales_dir, partitioning="hive"),
        "in-memory dataset": pads.dataset(table),
        "polars frame": pl.from_pandas(sales),
        "polars lazy frame": pl.from_pandas(sales).lazy(),
    }


KINDS = ["arrow table", "record batch reader", "parquet dataset", "in-memory dataset", "polars frame",
         "polars lazy frame"]  # fmt: skip


def moments(split: pd.DataFrame) -> np.ndarray:
    x = split["x"].to_numpy()
    return np.array([len(x), x.sum(), (x * x).sum(), split["store"].astype("int64").sum()])


@pytest.mark.parametrize("kind", KINDS)
def test_distribute_job_gives_the_pandas_answer(kind, sales, sales_dir, ctx):
    data = inputs(sales, sales_dir)[kind]
    got = sd.distribute_job(moments, data, reduce=np.add, compute_context=ctx)
    want = sd.distribute_job(moments, sales, reduce=np.add, compute_context=ctx)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_exec_by_gives_the_pandas_answer(kind, sales, sales_dir, ctx):
    data = inputs(sales, sales_dir)[kind]
    got = sd.exec_by(lambda keys, g: round(float(g["y"].sum()), 6), data, ["store"], compute_context=ctx).to_dict()
    want = sd.exec_by(lambda keys, g: round(float(g["y"].sum()), 6), sales, ["store"], compute_context=ctx).to_dict()
    assert {(int(k[0]),): v for k, v in got.items()} == want


@pytest.mark.parametrize("kind", KINDS)
def test_pema_gives_the_pandas_answer(kind, sales, sales_dir, ctx):
    data = inputs(sales, sales_dir)[kind]
    fit = pema_compute(LinearRegression("y", ["x"]), data, compute_context=ctx)
    ref = pema_compute(LinearRegression("y", ["x"]), sales, compute_context=ctx)
    assert fit.n == ref.n == len(sales)
    np.testing.assert_allclose(fit.coefficients, ref.coefficients, rtol=1e-10)


def test_kinds_of_source(sales, sales_dir):
    made = {k: as_data_source(v) for k, v in inputs(sales, sales_dir).items()}
    assert isinstance(made["parquet dataset"], ArrowDatasetData)
    assert all(isinstance(made[k], ArrowData) for k in KINDS if k != "parquet dataset")
    report = made["parquet dataset"].validate(sd.LocalParallelComputeContext(2))
    assert report.n_rows == len(sales) and report.files == 5 and ("store", "int32") in report.schema


def test_a_parquet_dataset_is_planned_from_footers_with_its_filter(sales, sales_dir, ctx):
    filtered = pads.dataset(sales_dir, partitioning="hive").filter((pads.field("store") >= 3) & (pads.field("x") > 0))
    src = as_data_source(filtered)
    assert isinstance(src, ArrowDatasetData) and src.filter is not None
    got = pd.concat(sd.distribute_job(lambda s: s, src, compute_context=ctx), ignore_index=True)
    want = sales[(sales["store"] >= 3) & (sales["x"] > 0)]
    assert len(got) == len(want)
    np.testing.assert_allclose(np.sort(got["y"].to_numpy()), np.sort(want["y"].to_numpy()))
    parquet = sd.ParquetData(sales_dir, filters=[("store", ">=", 3), ("x", ">", 0)])
    assert sd.distribute_job(moments, src, reduce=np.add, compute_context=ctx) == pytest.approx(
        sd.distribute_job(moments, parquet, reduce=np.add, compute_context=ctx)
    )
    # the dataset's partitions give exec_by its groups without a shuffle, as hive folders do
    groups = as_data_source(pads.dataset(sales_dir, partitioning="hive")).key_groups(["store"])
    assert groups is not None and sorted(g.rows for g in groups) == sorted(sales.groupby("store").size().tolist())


def test_a_dataset_on_its_own_filesystem(sales, tmp_path, ctx):
    sub = pa.fs.SubTreeFileSystem(str(tmp_path), pa.fs.LocalFileSystem())
    pq.write_table(
        pa.Table.from_pandas(sales, preserve_index=False), "data.parquet", filesystem=sub, row_group_size=500
    )
    dataset = pads.dataset("data.parquet", filesystem=sub)
    got = sd.distribute_job(moments, dataset, reduce=np.add, compute_context=ctx)
    np.testing.assert_allclose(got, moments(sales))


def test_a_csv_dataset_is_read_like_a_table(sales, tmp_path, ctx):
    sales.to_csv(tmp_path / "sales.csv", index=False)
    dataset = pads.dataset(tmp_path / "sales.csv", format="csv")
    assert isinstance(as_data_source(dataset), ArrowData)
    np.testing.assert_allclose(sd.distribute_job(moments, dataset, reduce=np.add, compute_context=ctx), moments(sales))


def test_a_reader_is_read_once_for_every_pass(sales, ctx):
    table = pa.Table.from_pandas(sales, preserve_index=False)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=777))
    fit = pema_compute(sd.pema.KMeans(["x", "y"], k=2, seed=1, max_iters=4), reader, compute_context=ctx)
    ref = pema_compute(sd.pema.KMeans(["x", "y"], k=2, seed=1, max_iters=4), sales, compute_context=ctx)
    np.testing.assert_allclose(np.sort(fit.centers, axis=0), np.sort(ref.centers, axis=0), rtol=1e-8)


def test_arrow_splits_pickle_only_their_rows():
    import pickle

    table = pa.table({"x": np.arange(1_000_000)})
    split = ArrowData(table).plan(100)[0]
    assert len(pickle.dumps(split)) < 200_000
    assert pickle.loads(pickle.dumps(split)).table.equals(split.table)


def test_polars_is_not_imported_for_other_inputs():
    import subprocess
    import sys

    code = (
        "import sys, pandas as pd, pyarrow as pa\n"
        "from sparkdist.sources import as_data_source\n"
        "as_data_source(pd.DataFrame({'a': [1]})); as_data_source(pa.table({'a': [1]}))\n"
        "assert 'polars' not in sys.modules, 'polars was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- table names of the Spark catalog --------------------------------------------------------------------


@pytest.fixture
def spark_table(spark: Any, sales: pd.DataFrame, tmp_path: Path) -> Any:
    """``sales`` saved as a table of the session's catalog, its files in tmp_path; dropped after."""
    name = f"sparkdist_sales_{uuid.uuid4().hex[:8]}"
    df = spark.createDataFrame(sales)
    df.write.option("path", str(tmp_path / name)).saveAsTable(name)
    yield name
    spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_a_table_name_reads_the_catalog_table(spark_table, sales, spark_ctx):
    want = moments(sales)
    for data in (spark_table, sd.SparkData(spark_table), f"default.{spark_table}"):
        got = sd.distribute_job(moments, data, reduce=np.add, compute_context=spark_ctx)
        np.testing.assert_allclose(got, want)
    report = sd.SparkData(spark_table).validate(spark_ctx)
    assert f"Spark table '{spark_table}'" in report.source
    fit = pema_compute(LinearRegression("y", ["x"]), spark_table, compute_context=spark_ctx)
    assert fit.n == len(sales)
    counts = sd.exec_by(lambda k, g: len(g), spark_table, ["store"], compute_context=spark_ctx).to_dict()
    assert counts == {(k,): n for k, n in sales.groupby("store").size().items()}
    assert sd.distribute_job(lambda s: list(s.columns), sd.SparkData(spark_table, columns=["x"]),
                             compute_context=spark_ctx)[0] == ["x"]  # fmt: skip


def test_a_table_name_in_a_local_context(spark_table, sales):
    with pytest.raises(sd.DataNotFoundError, match="neither a path nor a table") as info:
        sd.distribute_job(moments, spark_table, compute_context=sd.LocalComputeContext())
    assert "as a path" in str(info.value) and "a local compute context has no Spark catalog" in str(info.value)
    # SparkData(name) says it is a table: the active session reads it, brought to this process
    got = sd.distribute_job(moments, sd.SparkData(spark_table), reduce=np.add, compute_context=sd.LocalComputeContext())
    np.testing.assert_allclose(got, moments(sales))


def test_neither_a_path_nor_a_table_is_one_error(spark_ctx, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sd.DataNotFoundError) as info:
        sd.distribute_job(moments, "no_such_table_or_path", compute_context=spark_ctx)
    message = str(info.value)
    assert "neither a path nor a table" in message
    assert f"'{tmp_path}/no_such_table_or_path' does not exist" in message
    assert "the session's catalog has no table 'no_such_table_or_path'" in message
    with pytest.raises(sd.DataNotFoundError, match="cannot read the table 'no_such_table'"):
        sd.SparkData("no_such_table").validate(spark_ctx)


def test_an_existing_path_is_a_path_even_when_it_looks_like_a_table(tmp_path, monkeypatch, sales):
    monkeypatch.chdir(tmp_path)
    Path("sales").mkdir()
    pq.write_table(pa.Table.from_pandas(sales, preserve_index=False), "sales/part-0.parquet")
    assert isinstance(as_data_source("sales"), sd.ParquetData)
    assert isinstance(as_data_source("sales_2024"), NamedData)
    assert not isinstance(as_data_source("data/x.parquet"), NamedData)  # a path form: Parquet's "does not exist"
    with pytest.raises(sd.DataNotFoundError, match="neither a path nor a table"):
        sd.distribute_job(moments, "sales_2024", compute_context=sd.LocalComputeContext())


def test_bad_table_names():
    with pytest.raises(sd.InvalidArgumentError, match="table name"):
        sd.SparkData("not a name!")
    with pytest.raises(sd.ArgumentTypeError, match="DataFrame or a table name"):
        sd.SparkData(42)
