"""IcebergData: Iceberg tables in pyiceberg's SQL catalog (sqlite, in a tmp dir), read by sparkdist and
compared with pyiceberg's own reader (``scan().to_arrow()``) on the same snapshot, in every context.
The executors of the server modes have no pyiceberg: they read with pyarrow alone."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sparkdist as sd
from sparkdist.pema import LinearRegression, PemaAlgorithm, pema_compute

pyiceberg = pytest.importorskip("pyiceberg", reason="pyiceberg (the iceberg extra) is not installed")

from pyiceberg.catalog import load_catalog  # noqa: E402
from pyiceberg.manifest import (  # noqa: E402
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
)
from pyiceberg.table.snapshots import Operation  # noqa: E402
from pyiceberg.table.update.snapshot import _FastAppendFiles  # noqa: E402
from pyiceberg.typedef import Record  # noqa: E402
from pyiceberg.types import IntegerType  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture
def catalog(tmp_path: Path) -> Any:
    props = {
        "name": "test",
        "type": "sql",
        "uri": f"sqlite:///{tmp_path}/catalog.db",
        "warehouse": f"file://{tmp_path}",
    }
    cat = load_catalog(**props)
    cat.create_namespace("db")
    cat.properties_for_tests = props  # type: ignore[attr-defined]
    return cat


def frame(n: int, start: int = 0, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "k": pa.array([f"k{i % 7}" for i in ids], pa.string()),
        }
    )


def read_all(source: Any, ctx: Any) -> pd.DataFrame:
    parts = sd.distribute_job(lambda s: s, source, compute_context=ctx)
    got = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return got


def same_rows(got: pd.DataFrame, expected: pa.Table, key: str = "id") -> None:
    want = expected.to_pandas()
    assert list(got.columns) == list(want.columns)
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def write_position_deletes(table: Any, deletes: dict[str, list[int]]) -> None:
    """Commit a positional delete file as the Iceberg spec describes: a Parquet file of (file_path, pos)
    with the reserved field ids, sorted by path and position, listed in a new delete manifest of a new
    snapshot (operation "delete")."""
    schema = pa.schema(
        [
            pa.field("file_path", pa.string(), False, {b"PARQUET:field_id": b"2147483546"}),
            pa.field("pos", pa.int64(), False, {b"PARQUET:field_id": b"2147483545"}),
        ]
    )
    rows = sorted((path, pos) for path, positions in deletes.items() for pos in positions)
    data = pa.table([pa.array([r[0] for r in rows]), pa.array([r[1] for r in rows], pa.int64())], schema=schema)
    location = f"{table.location()}/data/deletes-{len(table.metadata.snapshots)}.parquet"
    fs, path = pa.fs.FileSystem.from_uri(location)
    pq.write_table(data, path, filesystem=fs, row_group_size=max(1, len(rows) // 3))
    delete_file = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES,
        file_path=location,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=len(rows),
        file_size_in_bytes=fs.get_file_info(path).size,
    )
    delete_file.spec_id = table.metadata.default_spec_id
    with table.transaction() as tx:
        _AddDeletes(tx, [delete_file]).commit()


class _DeleteManifestWriter(ManifestWriterV2):
    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


class _AddDeletes(_FastAppendFiles):
    """A snapshot that keeps every manifest of its parent and adds one delete manifest."""

    def __init__(self, tx: Any, delete_files: list[Any]) -> None:
        super().__init__(operation=Operation.DELETE, transaction=tx, io=tx._table.io)
        self._delete_files = delete_files

    def _process_manifests(self, manifests: list[Any]) -> list[Any]:
        writer = _DeleteManifestWriter(
            spec=self._transaction.table_metadata.spec(),
            schema=self._transaction.table_metadata.schema(),
            output_file=self.new_manifest_output(),
            snapshot_id=self._snapshot_id,
            avro_compression=self._compression,
        )
        with writer:
            for f in self._delete_files:
                writer.add(
                    ManifestEntry.from_args(
                        status=ManifestEntryStatus.ADDED,
                        snapshot_id=self._snapshot_id,
                        sequence_number=None,
                        file_sequence_number=None,
                        data_file=f,
                    )
                )
        return [*manifests, writer.to_manifest_file()]


# -- histories compared with pyiceberg's reader ------------------------------------------------------


def test_append_overwrite_delete_history_and_time_travel(catalog, ctx):
    t = catalog.create_table("db.events", schema=frame(1).schema)
    t.append(frame(3000, 0, seed=1))
    t.append(frame(2000, 3000, seed=2))
    after_appends = t.current_snapshot().snapshot_id
    t.delete("id >= 1000 and id < 1500")
    t.overwrite(frame(500, 10_000, seed=3), overwrite_filter="id >= 4000")
    t = catalog.load_table("db.events")
    for snapshot in t.metadata.snapshots:
        sid = snapshot.snapshot_id
        got = read_all(sd.IcebergData(t, snapshot_id=sid), ctx)
        same_rows(got, t.scan(snapshot_id=sid).to_arrow())
    latest = read_all(sd.IcebergData("db.events", catalog=catalog.properties_for_tests), ctx)
    same_rows(latest, t.scan().to_arrow())
    assert len(latest) == 3000 - 500 + 1000 + 500
    assert len(read_all(sd.IcebergData(t, snapshot_id=after_appends), ctx)) == 5000


def test_positional_deletes_are_applied_on_the_executors(catalog, ctx):
    t = catalog.create_table("db.deleted", schema=frame(1).schema)
    t.append(frame(4000, 0, seed=4))
    t.append(frame(1000, 4000, seed=5))
    files = {task.file.record_count: task.file.file_path for task in t.scan().plan_files()}
    gone = {files[4000]: [0, 1, 2, 999, 1000, 3999], files[1000]: list(range(0, 1000, 3))}
    write_position_deletes(t, gone)
    t = catalog.load_table("db.deleted")
    tasks = list(t.scan().plan_files())
    assert all(task.delete_files for task in tasks)  # pyiceberg plans our delete file for both data files
    expected = t.scan().to_arrow()
    assert expected.num_rows == 5000 - 6 - 334
    src = sd.IcebergData(t, rows_per_chunk=700, split_bytes=8_000)
    same_rows(read_all(src, ctx), expected)
    # chunked: every chunk sees only live rows, the same ones
    counted = sd.distribute_job(
        lambda chunks: sum(len(c) for c in chunks), src, chunked=True, reduce=lambda a, b: a + b, compute_context=ctx
    )
    assert counted == expected.num_rows
    report = src.validate(ctx)
    assert "positional delete file" in " ".join(report.warnings)


def test_renamed_and_added_columns_read_with_current_names(catalog, ctx):
    t = catalog.create_table(
        "db.evolved",
        schema=pa.schema([("a", pa.int32()), ("s", pa.string()), ("st", pa.struct([("x", pa.int64())]))]),
    )
    t.append(pa.table({"a": pa.array([1, 2, 3], pa.int32()), "s": ["p", "q", "r"], "st": [{"x": 1}, None, {"x": 3}]}))
    with t.update_schema() as update:
        update.rename_column("a", "id")
        update.rename_column("st.x", "xx")
        update.add_column("added", IntegerType())
        update.update_column("a", field_type=pyiceberg.types.LongType())
    t = catalog.load_table("db.evolved")
    t.append(
        pa.table(
            {
                "id": pa.array([4], pa.int64()),
                "s": ["t"],
                "st": pa.array([{"xx": 9}], pa.struct([("xx", pa.int64())])),
                "added": pa.array([7], pa.int32()),
            }
        )
    )
    src = sd.IcebergData(t)
    assert src.column_names() == ["id", "s", "st", "added"]
    got = read_all(src, ctx)
    same_rows(got, t.scan().to_arrow())
    assert got["added"].isna().sum() == 3 and got.loc[got["id"] == 3, "st"].iloc[0] == {"xx": 3}
    assert str(src.arrow_schema().field("id").type) == "int64"


def test_columns_and_row_filter(catalog, ctx):
    t = catalog.create_table("db.filtered", schema=frame(1).schema)
    t.append(frame(3000, 0, seed=6))
    t.append(frame(3000, 3000, seed=7))
    src = sd.IcebergData(t, columns=["x"], row_filter="id >= 2500 and k == 'k3'")
    got = read_all(src, ctx)
    want = t.scan(row_filter="id >= 2500 and k == 'k3'", selected_fields=("x",)).to_arrow().to_pandas()
    assert list(got.columns) == ["x"]
    np.testing.assert_allclose(np.sort(got["x"].to_numpy()), np.sort(want["x"].to_numpy()))
    # distribute_job's columns= narrows further; the filter's columns are still read where it runs
    both = sd.distribute_job(lambda s: list(s.columns), src, columns=["x"], compute_context=ctx)
    assert all(c == ["x"] for c in both)


def test_a_job_reads_the_pinned_snapshot_while_the_table_is_written(catalog, ctx):
    t = catalog.create_table("db.moving", schema=frame(1).schema)
    t.append(frame(2000, 0, seed=8))
    src = sd.IcebergData("db.moving", catalog=catalog)
    report = src.validate(ctx)
    pinned = src.pinned_snapshot()
    assert f"snapshot {pinned}" in report.source and report.n_rows == 2000
    catalog.load_table("db.moving").append(frame(500, 2000, seed=9))  # written after the pin
    assert len(read_all(src, ctx)) == 2000

    class CountRows(PemaAlgorithm):
        max_iters = 3

        def __init__(self, write: Any) -> None:
            self.write, self.passes, self.counts = write, 0, []

        def __getstate__(self) -> dict[str, Any]:
            return {k: v for k, v in self.__dict__.items() if k != "write"}  # the table stays on the driver

        def initialize(self) -> None:
            self.rows = 0

        def initialize_iteration(self) -> None:
            if self.passes:
                self.write()  # a commit between passes
            self.rows = 0

        def process_data(self, chunk: pd.DataFrame) -> None:
            self.rows += len(chunk)

        def update_results(self, other: Any) -> None:
            self.rows += other.rows

        def process_results(self) -> list[int]:
            self.passes += 1
            self.counts.append(self.rows)
            return self.counts

    fresh = sd.IcebergData("db.moving", catalog=catalog)

    def write() -> None:
        catalog.load_table("db.moving").append(frame(100, 90_000, seed=10))

    counts = pema_compute(CountRows(write), fresh, compute_context=ctx)
    assert counts == [2500, 2500, 2500]
    assert catalog.load_table("db.moving").scan().count() == 2700


def test_pema_linear_regression_over_an_iceberg_table(catalog, ctx):
    t = catalog.create_table("db.reg", schema=frame(1).schema)
    t.append(frame(3000, 0, seed=11))
    t.append(frame(3000, 3000, seed=12))
    write_position_deletes(t, {next(iter(t.scan().plan_files())).file.file_path: list(range(0, 3000, 5))})
    t = catalog.load_table("db.reg")
    fit = pema_compute(LinearRegression("y", ["x"]), sd.IcebergData(t), compute_context=ctx)
    ref = pema_compute(LinearRegression("y", ["x"]), t.scan().to_pandas(), compute_context=sd.LocalComputeContext())
    assert fit.n == ref.n == 6000 - 600
    np.testing.assert_allclose(fit.coefficients, ref.coefficients, rtol=1e-10)


def test_exec_by_over_an_iceberg_table(catalog, ctx):
    t = catalog.create_table("db.groups", schema=frame(1).schema)
    t.append(frame(1400, 0, seed=13))
    got = sd.exec_by(lambda keys, g: len(g), sd.IcebergData(t), ["k"], compute_context=ctx).to_dict()
    assert got == {(f"k{i}",): 200 for i in range(7)}


def test_a_pyiceberg_table_is_accepted_as_data(catalog, ctx):
    t = catalog.create_table("db.plain", schema=frame(1).schema)
    t.append(frame(100, 0, seed=14))
    total = sd.distribute_job(lambda s: int(s["id"].sum()), t, reduce=lambda a, b: a + b, compute_context=ctx)
    assert total == sum(range(100))


def test_an_empty_table_has_no_rows(catalog, ctx):
    t = catalog.create_table("db.empty", schema=frame(1).schema)
    src = sd.IcebergData(t)
    assert sd.distribute_job(len, src, compute_context=ctx) == []
    report = src.validate(ctx)
    assert report.n_rows == 0 and "no snapshot" in report.source


# -- bad input -----------------------------------------------------------------------------------------


def test_bad_input_is_refused_on_the_driver(catalog):
    t = catalog.create_table("db.bad", schema=frame(1).schema)
    t.append(frame(10))
    with pytest.raises(sd.InvalidArgumentError, match="pass catalog="):
        sd.IcebergData("db.bad")
    with pytest.raises(sd.ArgumentTypeError, match="pyiceberg Table or a table identifier"):
        sd.IcebergData(42)
    with pytest.raises(sd.ArgumentTypeError, match="snapshot_id must be an int"):
        sd.IcebergData(t, snapshot_id="1")
    with pytest.raises(sd.InvalidArgumentError, match="engine must be"):
        sd.IcebergData(t, engine="fast")
    with pytest.raises(sd.ColumnNotFoundError, match="nope"):
        sd.IcebergData(t, columns=["nope"])
    with pytest.raises(sd.DataSourceError, match="has no snapshot 123"):
        sd.IcebergData(t, snapshot_id=123).validate(sd.LocalComputeContext())
    with pytest.raises(sd.DataSourceError, match="cannot load the Iceberg table 'db.missing'"):
        sd.IcebergData("db.missing", catalog=catalog).validate(sd.LocalComputeContext())
    with pytest.raises(sd.InvalidArgumentError, match="row_filter 'nope > 1' cannot be used"):
        sd.distribute_job(len, sd.IcebergData(t, row_filter="nope > 1"), compute_context=sd.LocalComputeContext())


def test_missing_data_file_is_an_error_not_fewer_rows(catalog):
    t = catalog.create_table("db.lost", schema=frame(1).schema)
    t.append(frame(10))
    t.append(frame(10, 10))
    lost = next(iter(t.scan().plan_files())).file.file_path
    fs, path = pa.fs.FileSystem.from_uri(lost)
    fs.delete_file(path)
    with pytest.raises(sd.DataSourceError, match="cannot read the Iceberg data file"):
        sd.IcebergData(t).validate(sd.LocalComputeContext())


def test_engine_spark_needs_spark_and_its_iceberg_catalog(catalog, spark_ctx):
    t = catalog.create_table("db.sparky", schema=frame(1).schema)
    with pytest.raises(sd.DataSourceError, match="use a SparkComputeContext"):
        sd.IcebergData(t, engine="spark").validate(sd.LocalComputeContext())
    with pytest.raises(sd.DataSourceError, match=r"spark\.sql\.catalog\.test is not set"):
        sd.IcebergData(t, engine="spark").validate(spark_ctx)


def test_without_pyiceberg_the_error_says_what_to_install(monkeypatch, catalog):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyiceberg" else real(name, *a))
    with warnings.catch_warnings(), pytest.raises(sd.DataSourceError, match=r"sparkdist\[iceberg\]"):
        sd.IcebergData("db.x", catalog=catalog).validate(sd.LocalComputeContext())
