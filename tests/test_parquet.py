"""The Parquet fast path: executors read their own row groups with pyarrow (local files and S3)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sparkdist as sd
from sparkdist.pema import Crosstab, KMeans, LinearRegression, LogisticRegression, Mean, Summary, pema_compute


def add(a, b):
    return a + b


@pytest.fixture(scope="module")
def s3_uri():
    """An S3-compatible server on 127.0.0.1 holding a hive-partitioned data set."""
    import pyarrow.fs as pafs

    ThreadedMotoServer = pytest.importorskip(
        "moto.server", reason="a test-only library, not in the runtime set of make test-runtime"
    ).ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    query = f"endpoint_override={host}:{port}&scheme=http"
    fs, _ = pafs.FileSystem.from_uri(f"s3://sales/x?{query}&allow_bucket_creation=true")
    fs.create_dir("sales")
    rng = np.random.default_rng(4)
    for region in ("east", "west"):
        for i in range(2):
            frame = pd.DataFrame({"units": rng.integers(1, 10, 500), "price": rng.gamma(2.0, 5.0, 500)})
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False),
                f"sales/data/region={region}/part-{i}.parquet",
                filesystem=fs,
                row_group_size=100,
            )
    fs.create_dir("sales/data/_temporary")
    yield f"s3://sales/data?{query}"
    server.stop()


def s3_frame(uri):
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(uri)
    return pq.read_table(path, filesystem=fs, partitioning="hive").to_pandas()


def test_s3_with_hive_partitions(ctx, s3_uri):
    expected = s3_frame(s3_uri)
    src = sd.ParquetData(s3_uri)
    report = src.validate(ctx)
    assert report.n_rows == 2000 and report.files == 4
    assert ("region", "string") in report.schema
    revenue = sd.distribute_job(lambda s: float((s["units"] * s["price"]).sum()), src, reduce=add, compute_context=ctx)
    assert revenue == pytest.approx(float((expected["units"] * expected["price"]).sum()), rel=1e-12)
    east = sd.ParquetData(s3_uri, filters=[("region", "=", "east")], columns=["units", "region"])
    rows = pd.concat(sd.distribute_job(lambda s: s, east, compute_context=ctx))
    assert set(rows["region"]) == {"east"} and len(rows) == 1000
    table = pema_compute(Summary(["price"]), src, compute_context=ctx)
    assert table.loc["price", "std"] == pytest.approx(expected["price"].std(), rel=1e-12)


def test_s3_missing_path(s3_uri):
    missing = s3_uri.replace("s3://sales/data", "s3://sales/nothing-here")
    with pytest.raises(sd.DataNotFoundError, match="does not exist"):
        sd.ParquetData(missing).validate()


@pytest.fixture(scope="module")
def awkward_dir(tmp_path_factory) -> Path:
    """Hive partitions, nulls, files with different row-group sizes, and an empty file."""
    root = tmp_path_factory.mktemp("awkward")
    rng = np.random.default_rng(8)
    for year, group_size in ((2021, 37), (2022, 250), (2023, 1000)):
        n = 1200
        x1 = rng.normal(size=n)
        x2 = rng.normal(size=n)
        x1[rng.random(n) < 0.05] = np.nan
        frame = pd.DataFrame(
            {
                "x1": x1,
                "x2": x2,
                "y": 2 + 3 * np.nan_to_num(x1) - x2 + rng.normal(size=n),
                "flag": (rng.random(n) < 1 / (1 + np.exp(-x2))).astype("int64"),
                "kind": rng.choice(["a", "b", None], n),
            }
        )
        (root / f"year={year}").mkdir()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, root / f"year={year}" / "part-0.parquet", row_group_size=group_size)
    # the same columns as pandas wrote them (kind: string with pandas 2, large_string with pandas 3)
    pq.write_table(table.slice(0, 0), root / "year=2023" / "part-1.parquet")
    return root


ALGORITHMS = {
    "Mean": lambda: Mean("x1"),
    "Summary": lambda: Summary(["x1", "x2", "y", "year"]),
    "Crosstab": lambda: Crosstab("kind", "year"),
    "LinearRegression": lambda: LinearRegression("y", ["x1", "x2"]),
    "LogisticRegression": lambda: LogisticRegression("flag", ["x2"]),
    "KMeans": lambda: KMeans(
        ["x2", "y"], 2, init=[[-1.0, 0.0], [1.0, 4.0]], max_iters=3
    ),  # 3 passes: same work both ways
}


def comparable(result):
    if isinstance(result, pd.DataFrame):
        return result.sort_index().sort_index(axis=1).to_numpy(dtype=float)
    if isinstance(result, float):
        return np.array([result])
    if hasattr(result, "coefficients"):
        return np.concatenate([result.coefficients.to_numpy(), result.std_errors.to_numpy()])
    return np.concatenate([result.centers.to_numpy().ravel(), result.sizes, result.withinss])


def test_files_from_pandas_2_and_3_mix_string_and_large_string(tmp_path):
    for i, text in enumerate((pa.string(), pa.large_string())):
        table = pa.table({"x": pa.array([1.0, 2.0]), "kind": pa.array(["a", "b"], text)})
        pq.write_table(table, tmp_path / f"part-{i}.parquet")
    got = sd.distribute_job(len, str(tmp_path), reduce=add, compute_context=sd.LocalComputeContext())
    assert got == 4


@pytest.mark.parametrize("filters", [None, [("year", ">=", 2022), ("x2", ">", -1.0)]], ids=["all", "filtered"])
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_arrow_path_matches_spark_reader(spark_ctx, awkward_dir, name, filters):
    arrow = pema_compute(
        ALGORITHMS[name](), sd.ParquetData(awkward_dir, engine="arrow", filters=filters), compute_context=spark_ctx
    )
    spark = pema_compute(
        ALGORITHMS[name](), sd.ParquetData(awkward_dir, engine="spark", filters=filters), compute_context=spark_ctx
    )
    np.testing.assert_allclose(comparable(arrow), comparable(spark), rtol=1e-9)


@pytest.mark.parametrize("filters", [None, [("year", "=", 2021)]], ids=["all", "filtered"])
def test_distribute_job_rows_match_spark_reader(spark_ctx, awkward_dir, filters):
    def rows(engine):
        parts = sd.distribute_job(
            lambda s: s, sd.ParquetData(awkward_dir, engine=engine, filters=filters), compute_context=spark_ctx
        )
        frame = pd.concat(parts, ignore_index=True)[["x1", "x2", "y", "flag", "kind", "year"]]
        return frame.sort_values(["year", "x2"]).reset_index(drop=True)

    arrow, spark = rows("arrow"), rows("spark")
    pd.testing.assert_frame_equal(arrow, spark, check_dtype=False)
    assert len(arrow) == (3600 if filters is None else 1200)


def test_unreadable_file_found_on_a_worker_is_named(ctx, tmp_path):
    for i in range(2):
        pd.DataFrame({"x": np.arange(100.0)}).to_parquet(tmp_path / f"f{i}.parquet")
    src = sd.ParquetData(tmp_path)
    src.validate()  # planned from intact footers
    broken = tmp_path / "f1.parquet"
    data = broken.read_bytes()
    broken.write_bytes(data[:4] + b"\0" * (len(data) - 8) + data[-4:])  # same size, garbage pages and footer
    with pytest.raises(sd.JobError, match=r"cannot read Parquet file '.*f1\.parquet'"):
        sd.distribute_job(len, src, compute_context=ctx)


def test_auto_engine_asks_the_executors_when_they_may_not_share_files(spark_ctx, parquet_dir, monkeypatch):
    from sparkdist import _compat

    monkeypatch.setattr(_compat, "executors_share_filesystem", lambda session: False)
    ctx = sd.SparkComputeContext(spark_ctx.session)
    assert sd.distribute_job(len, sd.ParquetData(parquet_dir), reduce=add, compute_context=ctx) == 20_000
    assert sd.ParquetData(parquet_dir).prepare(ctx).engine == "arrow"  # the probe ran on an executor: it opens them


def test_auto_engine_falls_back_to_spark_and_says_why_once(spark_ctx, parquet_dir, monkeypatch, caplog):
    from sparkdist import _compat

    monkeypatch.setattr(_compat, "executors_share_filesystem", lambda session: False)
    ctx = sd.SparkComputeContext(spark_ctx.session)
    monkeypatch.setattr(ctx, "executors_can_open", lambda filesystem, paths: (False, "no such mount on the executors"))
    with caplog.at_level(logging.WARNING, logger="sparkdist"):
        for _ in range(2):
            assert sd.distribute_job(len, sd.ParquetData(parquet_dir), reduce=add, compute_context=ctx) == 20_000
    notes = [r.getMessage() for r in caplog.records if "Spark's reader" in r.getMessage()]
    assert len(notes) == 1 and "no such mount on the executors" in notes[0]


def test_s3_endpoint_from_the_usual_environment_variable(ctx, s3_uri, monkeypatch):
    uri, _, query = s3_uri.partition("?")
    endpoint = dict(part.split("=", 1) for part in query.split("&"))["endpoint_override"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{endpoint}")
    # the driver resolves the file system once; workers receive it, endpoint included
    assert sd.distribute_job(len, sd.ParquetData(uri), reduce=add, compute_context=ctx) == 2000


# -- paths pyarrow cannot open on the driver: Spark's reader stands in ------------------------------


@pytest.fixture
def viewfs(spark, parquet_dir):
    """``viewfs://<name>/data``: Hadoop's view file system, mounted on ``parquet_dir`` by a session
    setting (Spark copies session settings into the Hadoop configuration of its file reads, classic
    and Connect). Spark's reader opens it; pyarrow on the driver cannot (it reads viewfs:// through
    libhdfs, which this machine lacks)."""
    import uuid

    name = f"sd{uuid.uuid4().hex[:10]}"  # a fresh mount table: Hadoop caches a file system per authority
    key = f"fs.viewfs.mounttable.{name}.link./data"
    spark.conf.set(key, f"file://{parquet_dir}")
    uri = f"viewfs://{name}/data"
    try:
        sd.ParquetData(uri).validate(sd.LocalComputeContext())
    except sd.DataSourceError:
        pass
    else:
        pytest.skip("pyarrow opens viewfs:// on this machine (libhdfs present): no fallback to test")
    yield uri
    spark.conf.unset(key)


def counts(split):
    return np.array([len(split), int(split["k"].sum()), int(split["x"].isna().sum())])


def test_auto_engine_reads_with_spark_when_pyarrow_cannot_open_the_path(spark_ctx, parquet_dir, viewfs, caplog):
    ctx = sd.SparkComputeContext(spark_ctx.session)  # a fresh context: a fresh "once"
    expected = sd.distribute_job(counts, str(parquet_dir), reduce=np.add, compute_context=ctx)
    with caplog.at_level(logging.WARNING, logger="sparkdist"):
        for _ in range(2):
            got = sd.distribute_job(counts, viewfs, reduce=np.add, compute_context=ctx)
            np.testing.assert_array_equal(got, expected)
    notes = [r.getMessage() for r in caplog.records if "Spark's reader" in r.getMessage()]
    assert len(notes) == 1, notes
    assert viewfs in notes[0] and "pyarrow cannot open" in notes[0] and "on the driver" in notes[0]
    assert sd.ParquetData(viewfs).prepare(ctx).engine == "spark"


def test_spark_reader_fallback_serves_the_drivers_questions_too(spark_ctx, parquet_dir, viewfs):
    """columns=, validate(), pema_compute's DataInfo and is_distributed_context: the schema comes from
    Spark's reader when pyarrow cannot open the path."""
    assert sd.is_distributed_context(spark_ctx, data=viewfs)
    report = sd.ParquetData(viewfs).validate(spark_ctx)
    assert report.schema == [("x", "double"), ("k", "int64"), ("g", "string")]
    assert report.n_rows is None and any("Spark's reader" in w for w in report.warnings)
    with spark_ctx:
        src = sd.ParquetData(viewfs, columns=["k"], filters=[("k", "<", 10)])
        assert src.column_names() == ["x", "k", "g"]
    with pytest.raises(sd.ColumnNotFoundError, match=r"\['nope'\]"):
        sd.distribute_job(len, viewfs, columns=["nope"], compute_context=spark_ctx)
    parts = sd.distribute_job(lambda s: s, src, compute_context=spark_ctx)
    local = sd.distribute_job(lambda s: s, sd.ParquetData(parquet_dir, columns=["k"], filters=[("k", "<", 10)]))
    assert sorted(pd.concat(parts)["k"]) == sorted(pd.concat(local)["k"])
    fallback = pema_compute(Summary(["x", "k"]), viewfs, compute_context=spark_ctx)
    direct = pema_compute(Summary(["x", "k"]), str(parquet_dir), compute_context=spark_ctx)
    pd.testing.assert_frame_equal(fallback, direct, rtol=1e-9)


@pytest.mark.parametrize("uri", ["nosuchscheme://x/y", "dbfs:/mnt/x"])
def test_a_path_neither_reader_opens_names_both_attempts(spark_ctx, uri):
    if uri.startswith("dbfs:") and os.path.isdir("/dbfs"):
        pytest.skip("this machine has a /dbfs mount")
    with pytest.raises(sd.DataSourceError) as info:
        sd.distribute_job(len, uri, compute_context=spark_ctx)
    message = str(info.value)
    assert not isinstance(info.value, sd.DataNotFoundError)
    assert f"cannot read the Parquet data at '{uri}' with either reader" in message
    lines = message.splitlines()
    assert len(lines) == 4, message  # the path, one line per attempt, what to do: no JVM stack
    assert lines[1].startswith("  pyarrow (on the driver): ")
    assert lines[2].startswith("  Spark's reader (spark.read.parquet): ")
    assert f'No FileSystem for scheme "{uri.split(":")[0]}"' in lines[2]


def test_a_missing_path_under_a_scheme_only_spark_opens_is_not_found(spark_ctx, viewfs):
    with pytest.raises(sd.DataNotFoundError, match="with either reader") as info:
        pema_compute(Mean("x"), viewfs + "/nothing-here", compute_context=spark_ctx)
    assert "Path does not exist" in str(info.value) and len(str(info.value).splitlines()) == 4


def test_engine_arrow_with_a_path_pyarrow_cannot_open(spark_ctx, viewfs):
    with pytest.raises(sd.DataSourceError, match=r"engine='arrow' reads 'viewfs://.*' with pyarrow, which cannot") as i:
        sd.distribute_job(len, sd.ParquetData(viewfs, engine="arrow"), compute_context=spark_ctx)
    assert "engine='auto' or 'spark'" in str(i.value)


def test_engine_spark_with_a_path_spark_cannot_open(spark_ctx, viewfs):
    for uri, error in (("nosuchscheme://x/y", sd.DataSourceError), (viewfs + "/nothing-here", sd.DataNotFoundError)):
        with pytest.raises(error, match=r"Spark's reader \(spark\.read\.parquet\) cannot read") as info:
            sd.distribute_job(len, sd.ParquetData(uri, engine="spark"), compute_context=spark_ctx)
        assert uri in str(info.value) and "\n" not in str(info.value)
