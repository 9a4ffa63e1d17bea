"""Data sources: coercion of data=, Parquet discovery and validation on the driver."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sparkdist as sd
from sparkdist.sources import PandasData, as_data_source


def write(path: Path, table: dict, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), path, **kw)
    return path


def test_as_data_source_accepts_every_documented_kind(tmp_path, numbers):
    f = write(tmp_path / "a.parquet", {"x": [1.0]})
    assert isinstance(as_data_source(numbers), PandasData)
    assert isinstance(as_data_source(str(f)), sd.ParquetData)
    assert isinstance(as_data_source(f), sd.ParquetData)  # os.PathLike
    assert isinstance(as_data_source([f, str(f)]), sd.ParquetData)
    src = sd.ParquetData(f)
    assert as_data_source(src) is src


@pytest.mark.parametrize("bad", [{"x": [1]}, 42, [1, 2], None, b"bytes"])
def test_unsupported_data_is_a_type_error(bad):
    with pytest.raises(sd.ArgumentTypeError, match="data must be a sparkdist DataSource") as info:
        as_data_source(bad)
    assert isinstance(info.value, TypeError)


def test_report_of_a_partitioned_directory(tmp_path):
    for year in (2020, 2021):
        write(tmp_path / f"year={year}" / "part-0.parquet", {"v": [1.0, 2.0, 3.0]}, row_group_size=1)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".hidden.crc").write_text("not parquet, hidden")
    report = sd.ParquetData(tmp_path).validate(sd.LocalParallelComputeContext(2))
    assert report.n_rows == 6 and report.files == 2
    assert report.n_splits == 2 and report.empty_splits == 0
    assert report.schema == [("v", "double"), ("year", "int32")]
    assert report.skew == pytest.approx(1.0)
    assert "splits: 2" in str(report) and "year: int32" in str(report)


def test_partition_columns_and_filters(tmp_path, ctx):
    for year in (2020, 2021, 2022):
        write(tmp_path / f"year={year}" / "p.parquet", {"v": [float(year)] * 4, "i": [0, 1, 2, 3]}, row_group_size=2)
    src = sd.ParquetData(tmp_path, filters=[("year", ">=", 2021), ("i", ">", 0)])
    got = pd.concat(sd.distribute_job(lambda s: s, src, compute_context=ctx), ignore_index=True)
    assert sorted(got["year"].tolist()) == [2021] * 3 + [2022] * 3
    assert (got["v"] == got["year"].astype(float)).all()
    # statistics pruning: row groups with i in [0, 1] survive (i > 0 may hold), none is skipped wrongly
    assert src.validate().n_rows == 8


def test_row_group_statistics_prune_splits(tmp_path):
    write(tmp_path / "a.parquet", {"i": list(range(100))}, row_group_size=10)
    assert sd.ParquetData(tmp_path, filters=[("i", ">=", 95)]).validate().n_rows == 10


def test_glob_and_list_of_paths(tmp_path):
    for i in range(3):
        write(tmp_path / f"f{i}.parquet", {"x": [i]})
    write(tmp_path / "other.parquet", {"x": [99]})
    assert sd.ParquetData(str(tmp_path / "f*.parquet")).validate().n_rows == 3
    assert sd.ParquetData([tmp_path / "f0.parquet", tmp_path / "f2.parquet"]).validate().n_rows == 2


def test_file_uri(tmp_path):
    write(tmp_path / "a.parquet", {"x": [1, 2]})
    assert sd.ParquetData(f"file://{tmp_path}").validate().n_rows == 2


def test_empty_files_are_reported_not_fatal(tmp_path):
    write(tmp_path / "a.parquet", {"x": [1.0, 2.0]})
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), tmp_path / "b.parquet")
    report = sd.ParquetData(tmp_path).validate()
    assert report.n_rows == 2
    assert any("1 file(s) have no rows" in w and "b.parquet" in w for w in report.warnings)


def test_fewer_splits_than_slots_warns(tmp_path):
    write(tmp_path / "a.parquet", {"x": [1.0, 2.0]})
    report = sd.ParquetData(tmp_path).validate(sd.LocalParallelComputeContext(4))
    assert any("fewer splits than task slots (1 < 4)" in w for w in report.warnings)


# -- bad data: clear errors on the driver -------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(sd.DataNotFoundError, match=r"path '.*nowhere' does not exist") as info:
        sd.ParquetData(tmp_path / "nowhere").validate()
    assert isinstance(info.value, FileNotFoundError)


def test_directory_without_parquet(tmp_path):
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(sd.DataNotFoundError, match="holds no Parquet files"):
        sd.ParquetData(tmp_path).validate()


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(sd.DataNotFoundError, match="no files match the pattern"):
        sd.ParquetData(str(tmp_path / "*.parquet")).validate()


def test_non_parquet_files_are_named(tmp_path):
    write(tmp_path / "good.parquet", {"x": [1]})
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(sd.DataSourceError, match=r"1 file\(s\) are not Parquet or are truncated: '.*notes.csv'"):
        sd.ParquetData(tmp_path).validate()


def test_truncated_file_is_named(tmp_path):
    f = write(tmp_path / "t.parquet", {"x": list(range(1000))})
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(sd.DataSourceError, match=r"t\.parquet"):
        sd.ParquetData(tmp_path).validate()


def test_conflicting_schemas_name_files_and_columns(tmp_path):
    write(tmp_path / "a.parquet", {"x": [1, 2], "y": [1.0, 2.0]})
    write(tmp_path / "b.parquet", {"x": ["one", "two"], "y": [1.0, 2.0]})
    with pytest.raises(
        sd.SchemaConflictError, match=r"column 'x' is int64 in '.*a\.parquet' but string in '.*b\.parquet'"
    ):
        sd.ParquetData(tmp_path).validate()


def test_missing_columns_list_the_existing_ones(tmp_path):
    write(tmp_path / "a.parquet", {"x": [1], "y": [2]})
    with pytest.raises(
        sd.ColumnNotFoundError, match=r"columns \['z'\] are not in the data; available columns: \['x', 'y'\]"
    ):
        sd.ParquetData(tmp_path, columns=["x", "z"])
    with pytest.raises(KeyError):
        sd.ParquetData(tmp_path, columns=["z"])


def test_filter_on_a_missing_column(tmp_path):
    write(tmp_path / "a.parquet", {"x": [1]})
    with pytest.raises(sd.ColumnNotFoundError, match=r"filters name columns \['nope'\]"):
        sd.ParquetData(tmp_path, filters=[("nope", "=", 1)]).validate()


@pytest.mark.parametrize("bad", ["x > 1", [("x", "~", 1)], [], [("x",)]])
def test_filters_of_the_wrong_form(tmp_path, bad):
    with pytest.raises(sd.InvalidArgumentError, match="filters"):
        sd.ParquetData(tmp_path, filters=bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "duckdb"}, "engine must be 'auto', 'arrow' or 'spark'"),
        ({"rows_per_chunk": 0}, "rows_per_chunk must be a positive int"),
        ({"split_bytes": "1MB"}, "split_bytes must be a positive int"),
        ({"columns": "x"}, "columns must be a list of column names"),
    ],
)
def test_bad_options(tmp_path, kwargs, message):
    write(tmp_path / "a.parquet", {"x": [1]})
    with pytest.raises(sd.SparkDistError, match=message):
        sd.ParquetData(tmp_path, **kwargs)


def test_bad_path_type():
    with pytest.raises(sd.ArgumentTypeError, match="path must be a str, an os.PathLike or a non-empty list"):
        sd.ParquetData(42)  # type: ignore[arg-type]


def test_pandas_report(numbers):
    report = PandasData(numbers).validate(sd.LocalParallelComputeContext(2))
    assert report.n_rows == len(numbers) and report.n_splits == 2


# -- Spark DataFrames ----------------------------------------------------------------------------


def test_spark_data_validation(spark, spark_ctx, spark_mode):
    df = spark.range(100, numPartitions=4).selectExpr("id", "CAST(id AS double) * 2 AS y")
    report = sd.SparkData(df).validate(spark_ctx)
    assert report.schema == [("id", "bigint"), ("y", "double")]
    assert report.n_splits == (None if spark_mode.startswith("connect") else 4)
    with pytest.raises(sd.ColumnNotFoundError, match=r"\['nope'\]"):
        sd.SparkData(df, columns=["nope"])


def test_spark_data_rejects_other_objects():
    with pytest.raises(sd.ArgumentTypeError, match="SparkData expects a pyspark DataFrame"):
        sd.SparkData(pd.DataFrame())  # type: ignore[arg-type]


def test_parquet_through_spark_reader_gives_the_same_answer(spark_ctx, parquet_dir, numbers):
    def total(s):
        return float(s["k"].sum())

    add = float.__add__
    arrow = sd.distribute_job(total, sd.ParquetData(parquet_dir, engine="arrow"), reduce=add, compute_context=spark_ctx)
    spark = sd.distribute_job(total, sd.ParquetData(parquet_dir, engine="spark"), reduce=add, compute_context=spark_ctx)
    assert arrow == spark == float(numbers["k"].sum())


def test_spark_reader_applies_filters_and_columns(spark_ctx, parquet_dir, numbers):
    src = sd.ParquetData(parquet_dir, engine="spark", columns=["k"], filters=[("k", "<", 10)])
    parts = sd.distribute_job(lambda s: s, src, compute_context=spark_ctx)
    got = pd.concat(parts)
    assert list(got.columns) == ["k"] and sorted(got["k"]) == sorted(numbers.loc[numbers["k"] < 10, "k"])


def test_os_pathlike_is_accepted(tmp_path):
    f = write(tmp_path / "a.parquet", {"x": [1.0]})
    assert sd.distribute_job(len, os.fspath(f)) == [1]


# -- paths: URIs, dbfs:/, /Volumes -----------------------------------------------------------------


@pytest.mark.parametrize("uri", ["dbfs:/mnt/x", "dbfs:///mnt/x", "nosuchscheme://x/y", "s3://b/k", "file:/tmp/x"])
def test_uris_are_not_made_local_paths(uri):
    assert sd.ParquetData(uri).paths == [uri]


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sd.ParquetData("data/x").paths == [str(tmp_path / "data" / "x")]
    assert sd.ParquetData("C:/x").paths == [str(tmp_path / "C:" / "x")]  # a drive letter is no URI scheme


def test_volumes_paths_are_plain_local_paths():
    from sparkdist.sources.paths import arrow_filesystem, scheme, spark_uri

    path = "/Volumes/main/default/landing/events"
    src = sd.ParquetData(path)
    assert src.paths == [path] and scheme(path) is None
    assert spark_uri(path) == "file://" + path
    fs, local = arrow_filesystem(path)
    assert type(fs).__name__ == "LocalFileSystem" and local == path
    if not os.path.exists(path):  # on this machine: the ordinary "does not exist", not a URI error
        with pytest.raises(sd.DataNotFoundError, match=r"path '/Volumes/main/default/landing/events' does not exist"):
            src.validate(sd.LocalComputeContext())


def test_dbfs_paths_read_through_the_dbfs_mount(ctx, tmp_path, monkeypatch):
    from sparkdist.sources import paths

    monkeypatch.setattr(paths, "DBFS_MOUNT", str(tmp_path))  # this machine has no /dbfs: a stand-in
    for i in range(2):
        write(tmp_path / "mnt" / "sales" / f"part-{i}.parquet", {"x": [1.0, 2.0, 3.0]})
    src = sd.ParquetData("dbfs:/mnt/sales")
    assert src.paths == ["dbfs:/mnt/sales"]
    assert src.validate(ctx).files == 2
    assert sd.distribute_job(len, "dbfs:/mnt/sales", reduce=lambda a, b: a + b, compute_context=ctx) == 6


def test_dbfs_without_the_mount_outside_spark():
    if os.path.isdir("/dbfs"):
        pytest.skip("this machine has a /dbfs mount")
    with pytest.raises(sd.DataSourceError, match=r"pyarrow cannot open 'dbfs:/mnt/x': no /dbfs mount") as info:
        sd.distribute_job(len, "dbfs:/mnt/x", compute_context=sd.LocalComputeContext())
    assert "Spark's reader" in str(info.value)


def test_unknown_scheme_outside_spark():
    with pytest.raises(sd.DataSourceError, match=r"pyarrow cannot open 'nosuchscheme://x/y': ArrowInvalid") as info:
        sd.ParquetData("nosuchscheme://x/y").validate(sd.LocalComputeContext())
    assert "Check the path" in str(info.value) and "\n" not in str(info.value)


def test_hadoop_scheme_outside_spark_points_at_spark():
    with pytest.raises(sd.DataSourceError, match=r"pyarrow cannot open 'viewfs://cluster/data'") as info:
        sd.distribute_job(len, "viewfs://cluster/data", compute_context=sd.LocalParallelComputeContext(2))
    assert "'viewfs' is a Hadoop file system scheme" in str(info.value)
    assert "in a Spark compute context sparkdist reads it with Spark's reader" in str(info.value)


def test_engine_arrow_names_the_scheme_and_what_to_do():
    src = sd.ParquetData("nosuchscheme://x/y", engine="arrow")
    for _ in range(2):  # the second time from what the first attempt found
        with pytest.raises(sd.DataSourceError, match=r"engine='arrow' reads 'nosuchscheme://x/y' with pyarrow") as info:
            src.validate(sd.LocalComputeContext())
        message = str(info.value)
        assert "engine='auto' or 'spark' in a Spark compute context" in message
        assert "pyarrow's file system for 'nosuchscheme' paths" in message


def test_columns_of_an_unreadable_path_outside_spark():
    with pytest.raises(sd.DataSourceError, match="pyarrow cannot open 'nosuchscheme://x/y'"):
        sd.ParquetData("nosuchscheme://x/y", columns=["x"])


def test_is_distributed_context_does_not_open_the_path():
    assert sd.is_distributed_context(sd.LocalComputeContext(), data="nosuchscheme://x/y") is False


# -- one glob syntax, literal paths first, partition types as Spark gives them ---------------------


def test_one_glob_syntax_on_every_file_system(tmp_path):
    for rel in ("a/x.parquet", "a/b/y.parquet", "a/b/c/z.parquet", "d/w.parquet"):
        write(tmp_path / rel, {"v": [1.0]})

    def files(pattern: str, prefix: str = "") -> list[str]:
        found = sd.ParquetData(prefix + str(tmp_path / pattern))._discover().files
        return sorted(Path(f.path).relative_to(tmp_path).as_posix() for f in found)

    assert files("a/*.parquet") == ["a/x.parquet"]  # * stays within a folder
    assert files("*/*.parquet") == ["a/x.parquet", "d/w.parquet"]
    assert files("a/**/*.parquet") == ["a/b/c/z.parquet", "a/b/y.parquet", "a/x.parquet"]  # ** crosses folders
    assert files("a/?/y.parquet") == ["a/b/y.parquet"]
    # the same pattern through a URI (pyarrow's file system): the same files
    assert files("a/*.parquet", prefix="file://") == ["a/x.parquet"]


def test_an_existing_path_with_glob_characters_is_read_as_itself(tmp_path):
    write(tmp_path / "runs" / "run[1]" / "part-0.parquet", {"v": [1.0, 2.0]})
    write(tmp_path / "runs" / "run1" / "part-0.parquet", {"v": [5.0]})
    got = sd.distribute_job(len, str(tmp_path / "runs" / "run[1]"), reduce=lambda a, b: a + b,
                            compute_context=sd.LocalComputeContext())  # fmt: skip
    assert got == 2  # not the glob's match, runs/run1


def hive_dataset(root: Path) -> Path:
    for day, k, city in (("2024-01-01", 1, "Oslo"), ("2024-01-02", 2, "Bergen"), ("2024-01-02", 3, "Oslo")):
        write(root / f"day={day}" / f"k={k}" / f"city={city}" / "part-0.parquet", {"x": [1.0, 2.0]})
    return root


def test_hive_partition_types_are_spark_types(tmp_path):
    schema = sd.ParquetData(hive_dataset(tmp_path)).arrow_schema()
    assert [(f.name, str(f.type)) for f in schema] == [
        ("x", "double"), ("day", "date32[day]"), ("k", "int32"), ("city", "string")
    ]  # fmt: skip


def test_hive_partition_types_agree_between_engines(spark, spark_ctx, tmp_path):
    from chispa import assert_df_equality

    root = hive_dataset(tmp_path)
    # the rows the Arrow engine hands to functions, as a Spark DataFrame, equal Spark's own reading
    frames = sd.distribute_job(lambda split: split, sd.ParquetData(root, engine="arrow"), compute_context=spark_ctx)
    from_arrow = spark.createDataFrame(pd.concat(frames, ignore_index=True))
    assert_df_equality(from_arrow, spark.read.parquet(str(root)), ignore_row_order=True, ignore_nullable=True)

    def kinds(split):
        text = str(pd.Series(["x"]).dtype)  # the executor's pandas: "object" on pandas 2, "str" on pandas 3
        found = {c: (str(split[c].dtype), type(split[c].iloc[0]).__name__) for c in ("day", "k", "city")}
        return {**found, "city": (found["city"][0] == text, found["city"][1])}, len(split)

    arrow = sd.distribute_job(kinds, sd.ParquetData(root, engine="arrow"), compute_context=spark_ctx)
    spark = sd.distribute_job(kinds, sd.ParquetData(root, engine="spark"), compute_context=spark_ctx)
    expected = {"day": ("object", "date"), "k": ("int32", "int32"), "city": (True, "str")}
    assert all(a == expected for a, _ in arrow) and all(s == expected for s, _ in spark)
    assert sum(n for _, n in arrow) == sum(n for _, n in spark) == 6
    arrow_schema = sd.ParquetData(root, engine="arrow").prepare(spark_ctx).arrow_schema()
    spark_schema = sd.ParquetData(root, engine="spark").prepare(spark_ctx).arrow_schema()
    assert {f.name: str(f.type) for f in arrow_schema} == {f.name: str(f.type) for f in spark_schema}


def test_pyarrow_options_filesystem_partitioning_schema(tmp_path):
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    root = hive_dataset(tmp_path)
    plain = sd.ParquetData(str(root), partitioning=None)
    assert plain.column_names() == ["x"]
    strings = pads.HivePartitioning(pa.schema([("day", pa.string()), ("k", pa.string()), ("city", pa.string())]))
    typed = sd.ParquetData(str(root), partitioning=strings)
    assert {f.name: str(f.type) for f in typed.arrow_schema()}["k"] == "string"
    on_fs = sd.ParquetData(str(root).lstrip("/"), filesystem=pafs.SubTreeFileSystem("/", pafs.LocalFileSystem()))
    assert on_fs.validate(sd.LocalComputeContext()).n_rows == 6
    wider = pa.schema([("x", pa.float64()), ("extra", pa.int64())])
    assert sd.ParquetData(str(root), schema=wider, partitioning=None).column_names() == ["x", "extra"]
    for bad, what in ((42, "filesystem"), ("directory", "partitioning"), ({"x": "double"}, "schema")):
        with pytest.raises(sd.InvalidArgumentError, match=f"{what} must be"):
            sd.ParquetData(str(root), **{what: bad})


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        ("Delta Lake", "_delta_log/00000000000000000000.json"),
        ("Apache Hudi", ".hoodie/hoodie.properties"),
        ("Apache Iceberg", "metadata/v1.metadata.json"),
    ],
)
def test_table_folders_are_refused_unless_asked(ctx, tmp_path, fmt, marker):
    # a table folder holds Parquet files the table has removed: reading them as plain Parquet is wrong
    table = tmp_path / "table"
    table.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"x": [float(i)] * 3}), table / f"part-{i}.parquet")
    (table / marker).parent.mkdir(parents=True, exist_ok=True)
    (table / marker).write_text("{}")
    engines = ["auto", "arrow"] + (["spark"] if getattr(ctx, "spark_session", None) is not None else [])
    for engine in engines:
        with pytest.raises(sd.DataSourceError, match=rf"is a {fmt} table folder.*read_table_files=True"):
            sd.distribute_job(len, sd.ParquetData(table, engine=engine), compute_context=ctx)
        rows = sd.distribute_job(
            len,
            sd.ParquetData(table, engine=engine, read_table_files=True),
            reduce=lambda a, b: a + b,
            compute_context=ctx,
        )
        assert rows == 6


def test_duplicate_column_names_in_a_file_are_named(tmp_path):
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4]), pa.array([5, 6])], names=["a", "b", "a"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(sd.SchemaConflictError, match=r"dup.parquet' has more than one column named 'a'"):
        sd.ParquetData(tmp_path).validate(sd.LocalComputeContext())


def test_read_table_files_must_be_a_bool(tmp_path):
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "a.parquet")
    with pytest.raises(sd.ArgumentTypeError, match="read_table_files"):
        sd.ParquetData(tmp_path, read_table_files="yes")
