"""Delta Lake tables on the Arrow fast path, compared with deltalake's own reader (DeltaTable.scan)
on the same snapshot: histories, time travel, deletion vectors (inline, on disk, absolute paths,
in checkpoints), column mapping, special partition values, pinning, exec_by, PEMA, bad input.
Executors of the standalone and connect-server modes have no deltalake: only the driver does."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import sparkdist as sd
from sparkdist.pema import LinearRegression, PemaAlgorithm, pema_compute
from sparkdist.sources import delta_log, roaring

deltalake = pytest.importorskip("deltalake")
from deltalake import DeltaTable, WriterProperties, write_deltalake  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _delta_tables import commit, data_file, delete_rows, log_state, with_reader_features  # noqa: E402

KEYS = ["x y%z", "a=b", "ü/é", "plain"]


def rows_per_group(n: int) -> WriterProperties:
    return WriterProperties(max_row_group_size=n, write_batch_size=n)


def identity(split):
    return split


def collect(source, ctx) -> pd.DataFrame:
    frames = sd.distribute_job(identity, source, compute_context=ctx)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def reference(path, version=None, columns=None) -> pa.Table:
    """deltalake's own reader (DataFusion, deletion vectors and column mapping honoured)."""
    table = DeltaTable(str(path), version=version)
    if hasattr(table, "scan"):
        return pa.table(table.scan(columns=columns))
    from deltalake import QueryBuilder  # deltalake before 1.5

    listed = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return pa.table(QueryBuilder().register("t", table).execute(f"SELECT {listed} FROM t").read_all())


def same_rows(ours: pd.DataFrame, theirs: pa.Table, schema: pa.Schema) -> None:
    expected = theirs.select(schema.names).cast(schema).to_pandas()
    assert list(ours.columns) == list(schema.names)
    assert len(ours) == len(expected)
    if not len(ours):
        return
    by = [c for c in schema.names if not pa.types.is_struct(schema.field(c).type)]
    pd.testing.assert_frame_equal(
        ours.sort_values(by).reset_index(drop=True), expected.sort_values(by).reset_index(drop=True), check_dtype=False
    )


def frame(n: int, seed: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(start, start + n, dtype=np.int64),
            "k": [KEYS[i % len(KEYS)] for i in range(n)],
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """v0 create, v1 append, v2 overwrite, v3 delete (deltalake rewrites files), v4 append."""
    path = tmp_path_factory.mktemp("history") / "t"
    write_deltalake(path, frame(300, 1), partition_by=["k"])
    time.sleep(0.05)  # each commit at a time of its own
    write_deltalake(path, frame(200, 2, 300), mode="append", partition_by=["k"])
    time.sleep(0.05)
    write_deltalake(path, frame(400, 3, 1000), mode="overwrite", partition_by=["k"])
    time.sleep(0.05)
    DeltaTable(path).delete("id < 1100")
    time.sleep(0.05)
    write_deltalake(path, frame(50, 4, 5000), mode="append", partition_by=["k"])
    return path


@pytest.fixture(scope="module")
def dv_table(tmp_path_factory) -> Path:
    """Partitioned by awkward values, several row groups per file, rows deleted by deletion vectors
    inline, in DV files (with a random prefix), at an absolute path, and twice for one file."""
    path = tmp_path_factory.mktemp("dv") / "t"
    write_deltalake(path, frame(4000, 5), partition_by=["k"], writer_properties=rows_per_group(300))
    _, _, adds, _ = log_state(path)
    first = sorted(adds)  # 1,000 rows each
    write_deltalake(path, frame(1000, 6, 4000), partition_by=["k"], mode="append")
    spaced = next(p for p in first if "x%2520y" in p)
    delete_rows(path, spaced, [0, 1, 2, 299, 300, 301, 999])  # across row groups
    delete_rows(path, next(p for p in first if "a%253Db" in p), range(0, 1000, 3), inline=True)
    delete_rows(path, next(p for p in first if "%25C3" in p), [5, 6, 7], prefix="ab")
    delete_rows(path, next(p for p in first if "plain" in p), range(500), absolute=True)
    delete_rows(path, spaced, [10, 11])  # a second vector for the same file replaces the first
    return path


def test_history_every_version(ctx, history):
    for version in range(5):
        src = sd.DeltaData(history, version=version)
        same_rows(collect(src, ctx), reference(history, version), src.arrow_schema())
    latest = sd.DeltaData(history)
    assert latest.validate(ctx).source.endswith("(version 4)")


def test_time_travel_by_timestamp(ctx, history):
    stamps = {h["version"]: h["timestamp"] for h in DeltaTable(history).history()}
    middle = (stamps[1] + stamps[2]) / 2  # between the commits (the log's times are the files' own)
    at = datetime.datetime.fromtimestamp(middle / 1000, tz=datetime.timezone.utc)
    src = sd.DeltaData(history, timestamp=at)
    assert src.pinned_version == 1
    same_rows(collect(src, ctx), reference(history, 1), src.arrow_schema())
    as_text = sd.DeltaData(history, timestamp=at.isoformat())
    assert as_text.pinned_version == 1


def test_a_time_before_the_first_commit_is_an_error_not_version_0(history):
    """deltalake's load_as_version gives version 0 for any earlier time; Spark's timestampAsOf refuses it."""
    first = min(h["timestamp"] for h in DeltaTable(history).history())
    before = datetime.datetime.fromtimestamp(first / 1000 - 3600, tz=datetime.timezone.utc)
    with pytest.raises(sd.DataNotFoundError, match="has no version at or before .*committed at"):
        _ = sd.DeltaData(history, timestamp=before).pinned_version
    with pytest.raises(sd.DataNotFoundError, match="has no version at or before"):
        _ = sd.DeltaData(history, timestamp="2001-01-01T00:00:00").pinned_version


def test_deletion_vectors(ctx, dv_table):
    src = sd.DeltaData(dv_table)
    report = src.validate(ctx)
    theirs = reference(dv_table)
    assert report.n_rows == theirs.num_rows == 5000 - 9 - 334 - 3 - 500
    assert any("deletion vectors" in w for w in report.warnings)
    same_rows(collect(src, ctx), theirs, src.arrow_schema())
    assert src.known_rows() == theirs.num_rows


def test_deletion_vectors_with_filters_and_columns(ctx, dv_table):
    src = sd.DeltaData(dv_table, columns=["id", "x"], filters=[("k", "in", ["x y%z", "a=b"]), ("id", "<", 4500)])
    expected = reference(dv_table).to_pandas()
    expected = expected[expected["k"].isin(["x y%z", "a=b"]) & (expected["id"] < 4500)][["id", "x"]]
    same_rows(collect(src, ctx), pa.Table.from_pandas(expected, preserve_index=False), src.arrow_schema())
    assert "4 of 8 file(s) skipped" in str(src.validate(ctx))  # the other partitions' files are not opened


def test_small_chunks_cross_deleted_rows(ctx, dv_table):
    src = sd.DeltaData(dv_table, rows_per_chunk=97, columns=["id"])
    sizes = sd.distribute_job(lambda chunks: [len(c) for c in chunks], src, chunked=True, compute_context=ctx)
    assert sum(map(sum, sizes)) == reference(dv_table).num_rows
    assert all(s == 97 for per in sizes for s in per[:-1])


def test_checkpoint_then_more_deletes(ctx, tmp_path):
    path = tmp_path / "t"
    write_deltalake(path, frame(2000, 7), partition_by=["k"], writer_properties=rows_per_group(500))
    _, _, adds, _ = log_state(path)
    files = sorted(adds)
    delete_rows(path, files[0], range(0, 500, 2), inline=True)
    delete_rows(path, files[1], range(100))
    DeltaTable(path).create_checkpoint()
    assert list((path / "_delta_log").glob("*.checkpoint.parquet"))
    delete_rows(path, files[2], [1, 2, 3])
    src = sd.DeltaData(path)
    same_rows(collect(src, ctx), reference(path), src.arrow_schema())
    assert reference(path).num_rows == 2000 - 250 - 100 - 3


def _v2_checkpoint(path: Path, sidecar: bool) -> int:
    """A v2 checkpoint of the table's current state (JSON; its adds inline or in a Parquet sidecar),
    and the commits before it removed, as log cleanup would."""
    import uuid

    import pyarrow.parquet as pq

    protocol, meta, adds, _ = log_state(path)
    version = commit(path, [with_reader_features(protocol, "v2Checkpoint")], operation="UPGRADE PROTOCOL")
    protocol, *_ = log_state(path)
    log = path / "_delta_log"
    lines = [{"checkpointMetadata": {"version": version}}, {"protocol": protocol}, {"metaData": meta}]
    if sidecar:
        (log / "_sidecars").mkdir()
        name = f"{uuid.uuid4()}.parquet"
        dv = pa.struct([("storageType", pa.string()), ("pathOrInlineDv", pa.string()), ("offset", pa.int32()),
                        ("sizeInBytes", pa.int32()), ("cardinality", pa.int64())])  # fmt: skip
        add = pa.struct([("path", pa.string()), ("partitionValues", pa.map_(pa.string(), pa.string())),
                         ("size", pa.int64()), ("modificationTime", pa.int64()), ("dataChange", pa.bool_()),
                         ("stats", pa.string()), ("deletionVector", dv)])  # fmt: skip
        rows = [
            {"add": {f.name: (list(a[f.name].items()) if f.name == "partitionValues" else a.get(f.name)) for f in add}}
            for a in adds.values()
        ]
        pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([("add", add)])), log / "_sidecars" / name)
        size = (log / "_sidecars" / name).stat().st_size
        lines.append({"sidecar": {"path": name, "sizeInBytes": size, "modificationTime": int(time.time() * 1000)}})
    else:
        lines += [{"add": a} for a in adds.values()]
    (log / f"{version:020d}.checkpoint.{uuid.uuid4()}.json").write_text("\n".join(json.dumps(x) for x in lines))
    for old in range(version):
        (log / f"{old:020d}.json").unlink()
    return version


@pytest.mark.parametrize("sidecar", [False, True])
def test_v2_checkpoint_without_older_commits(tmp_path, sidecar):
    path = tmp_path / "v2"
    write_deltalake(path, frame(900, 18), partition_by=["k"])
    _, _, adds, _ = log_state(path)
    files = sorted(adds)
    delete_rows(path, files[0], range(0, 225, 2), inline=True)
    delete_rows(path, files[1], range(50))
    expected = reference(path)
    version = _v2_checkpoint(path, sidecar)
    later = delete_rows(path, files[2], [0])  # a commit after the checkpoint
    import pyarrow.fs as pafs

    descriptors = delta_log._replay_deletes(pafs.LocalFileSystem(), str(path / "_delta_log"), later)
    assert sorted(descriptors) == sorted(files[:3]) and version < later
    ours = collect(sd.DeltaData(path), sd.LocalComputeContext())  # deltalake reads the checkpoint too
    assert len(ours) == expected.num_rows - 1
    same_rows(ours, reference(path), sd.DeltaData(path).arrow_schema())


def test_column_mapping_name_with_deletes(ctx, tmp_path):
    path = tmp_path / "cm"
    data = frame(1500, 8).rename(columns={"x": "x value", "y": "y.y"})
    data["s"] = [{"a b": i, "c": str(i)} for i in range(len(data))]
    write_deltalake(path, data, partition_by=["k"], configuration={"delta.columnMapping.mode": "name"})
    _, meta, adds, _ = log_state(path)
    assert "col-" in meta["schemaString"]
    delete_rows(path, sorted(adds)[0], range(0, 300, 7))
    src = sd.DeltaData(path)
    ours = collect(src, ctx)
    assert list(ours.columns) == ["id", "k", "x value", "y.y", "s"]
    same_rows(ours, reference(path), src.arrow_schema())
    only = sd.DeltaData(path, columns=["y.y", "k"], filters=[("x value", ">", 0.5)])
    expected = reference(path).to_pandas()
    expected = expected[expected["x value"] > 0.5][["y.y", "k"]]
    same_rows(collect(only, ctx), pa.Table.from_pandas(expected, preserve_index=False), only.arrow_schema())


def test_column_mapping_id_matches_field_ids(ctx, tmp_path):
    # id mode: columns are found by their Parquet field ids, whatever the files call them; the log's
    # physical names are changed here so that matching by name would find nothing
    path = tmp_path / "cm_id"
    data = frame(600, 16)
    write_deltalake(path, data, configuration={"delta.columnMapping.mode": "name"})
    _, meta, adds, _ = log_state(path)
    schema = json.loads(meta["schemaString"])
    for f in schema["fields"]:
        f["metadata"]["delta.columnMapping.physicalName"] = "renamed-" + f["name"]
    meta = dict(meta, schemaString=json.dumps(schema))
    meta["configuration"] = dict(meta["configuration"], **{"delta.columnMapping.mode": "id"})
    commit(path, [{"metaData": meta}], operation="SET TBLPROPERTIES")
    delete_rows(path, next(iter(adds)), range(0, 600, 5))
    src = sd.DeltaData(path, columns=["x", "id"])
    ours = collect(src, ctx).sort_values("id").reset_index(drop=True)
    expected = data[data["id"] % 5 != 0][["x", "id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, expected)


def test_types_null_partitions_and_timestamp_ntz(ctx, tmp_path):
    path = tmp_path / "types"
    stamps = [datetime.datetime(2024, 1, 1, 12, 0, 0, 123456), None, datetime.datetime(1969, 12, 31, 23, 59, 59, 1)]
    table = pa.table(
        {
            "p": pa.array([1, None, 3], pa.int32()),
            "d": pa.array([datetime.date(2024, 1, 2), None, datetime.date(1970, 1, 1)]),
            "ntz": pa.array(stamps, pa.timestamp("us")),
            "ts": pa.array(stamps, pa.timestamp("us", "UTC")),
            "tp": pa.array(stamps, pa.timestamp("us")),
            "s": pa.array(["", None, "é"]),
        }
    )
    write_deltalake(path, table, partition_by=["p", "tp"])
    src = sd.DeltaData(path)
    assert dict(src.validate(ctx).schema)["p"] == "int32"
    same_rows(collect(src, ctx), reference(path), src.arrow_schema())
    # timestamps are truncated to milliseconds in the statistics: the file must not be skipped
    late = sd.DeltaData(path, filters=[("ntz", ">=", datetime.datetime(2024, 1, 1, 12, 0, 0, 123400))])
    assert len(collect(late, ctx)) == 1
    nulls = sd.DeltaData(path, filters=[("p", "=", 3)])
    assert collect(nulls, ctx)["p"].tolist() == [3]


def test_change_data_feed_and_liquid_clustering(ctx, tmp_path):
    # change data files (_change_data/) and clustering metadata are not data of the snapshot
    path = tmp_path / "cdf"
    write_deltalake(path, frame(800, 17), configuration={"delta.enableChangeDataFeed": "true"})
    DeltaTable(path).update(updates={"x": "x + 1"}, predicate="id < 100")
    DeltaTable(path).delete("id >= 700")
    assert list(path.glob("_change_data/*.parquet"))
    protocol, *_ = log_state(path)
    upgraded = with_reader_features(protocol)
    upgraded["protocol"]["writerFeatures"] = sorted(
        {*upgraded["protocol"]["writerFeatures"], "clustering", "domainMetadata"}
    )
    clustering = {
        "domain": "delta.clustering",
        "configuration": json.dumps({"clusteringColumns": [["id"]]}),
        "removed": False,
    }
    commit(path, [upgraded, {"domainMetadata": clustering}], operation="CLUSTER BY")
    src = sd.DeltaData(path)
    ours = collect(src, ctx)
    same_rows(ours, reference(path), src.arrow_schema())
    assert len(ours) == 700


def test_pinned_while_the_table_is_written(ctx, tmp_path):
    path = tmp_path / "pinned"
    write_deltalake(path, frame(100, 9))
    src = sd.DeltaData(path)
    assert src.pinned_version == 0
    write_deltalake(path, frame(100, 10, 100), mode="append")
    assert len(collect(src, ctx)) == 100
    assert len(collect(sd.DeltaData(path), ctx)) == 200  # a new object reads the newest version


class _CountingPasses(PemaAlgorithm):
    """Three passes counting rows; between passes the driver appends to the table."""

    def __init__(self, path):
        self.path, self.max_iters, self.passes = str(path), 3, []

    def initialize(self):
        self.n = 0

    def initialize_iteration(self):  # on the driver (executors have no deltalake: imported here)
        from deltalake import write_deltalake

        self.n = 0
        if self.passes:
            write_deltalake(self.path, frame(10, len(self.passes), 10_000 * len(self.passes)), mode="append")

    def process_data(self, chunk):
        self.n += len(chunk)

    def update_results(self, other):
        self.n += other.n

    def process_results(self):
        self.passes.append(self.n)
        return self.passes

    def has_converged(self):
        return False


def test_every_pema_pass_reads_the_pinned_version(ctx, tmp_path):
    path = tmp_path / "passes"
    write_deltalake(path, frame(500, 11))
    algo = _CountingPasses(path)
    assert pema_compute(algo, sd.DeltaData(path), compute_context=ctx) == [500, 500, 500]
    assert DeltaTable(path).version() == 2  # written twice meanwhile
    assert pema_compute(_CountingPasses(path), str(path), compute_context=ctx)[0] == 520  # a path: the latest


def test_exec_by_partition_key_without_shuffle(ctx, dv_table):
    src = sd.DeltaData(dv_table).prepare(ctx)
    planned = src.key_groups(["k"])
    assert planned is not None and {g.keys for g in planned} == {(k,) for k in KEYS}
    expected = reference(dv_table).to_pandas().groupby("k")["x"].agg(["size", "sum"])
    for g in planned:
        assert g.rows == expected.loc[g.keys[0], "size"]
    results = sd.exec_by(lambda keys, rows: (len(rows), float(rows["x"].sum())), src, keys=["k"], compute_context=ctx)
    got = {r.keys["k"]: r.result for r in results}
    assert set(got) == set(KEYS)
    for key, (n, total) in got.items():
        assert n == expected.loc[key, "size"]
        assert total == pytest.approx(expected.loc[key, "sum"], rel=1e-12)


def test_exec_by_other_columns(ctx, tmp_path):
    # keys the layout does not separate: on Spark the executors read the planned splits (deletion
    # vectors applied, column-mapped names undone) and one shuffle groups them
    path = tmp_path / "by"
    data = frame(3000, 19)
    data["g g"] = data["id"] % 5
    write_deltalake(path, data, configuration={"delta.columnMapping.mode": "name"})
    _, _, adds, _ = log_state(path)
    delete_rows(path, next(iter(adds)), range(0, 3000, 4))
    results = sd.exec_by(
        lambda keys, rows: float(rows["x"].sum()), sd.DeltaData(path), keys=["g g"], compute_context=ctx
    )
    expected = reference(path).to_pandas().groupby("g g")["x"].sum()
    assert {r.keys["g g"]: r.result for r in results} == pytest.approx(expected.to_dict(), rel=1e-12)


def test_linear_regression_equals_deltalake_rows(ctx, dv_table):
    ours = pema_compute(LinearRegression("y", ["x", "id"]), sd.DeltaData(dv_table), compute_context=ctx)
    rows = reference(dv_table).to_pandas()
    theirs = pema_compute(LinearRegression("y", ["x", "id"]), rows, compute_context=sd.LocalComputeContext())
    np.testing.assert_allclose(ours.coefficients, theirs.coefficients, rtol=1e-10)
    assert ours.n == len(rows)


def test_plain_path_is_read_as_delta(ctx, dv_table):
    assert sum(sd.distribute_job(len, str(dv_table), compute_context=ctx)) == reference(dv_table).num_rows
    with pytest.raises(sd.DataSourceError, match=r"DeltaData\(path\)"):
        sd.ParquetData(dv_table).validate()


# -- bad input ------------------------------------------------------------------------------------


def test_missing_version_and_bad_arguments(history, tmp_path):
    with pytest.raises(sd.DataNotFoundError, match="has no version 99.*versions run to 4"):
        sd.DeltaData(history, version=99).validate()
    with pytest.raises(sd.InvalidArgumentError, match="version or timestamp, not both"):
        sd.DeltaData(history, version=1, timestamp="2024-01-01T00:00:00Z")
    with pytest.raises(sd.InvalidArgumentError, match="ISO 8601"):
        sd.DeltaData(history, timestamp="yesterday")
    with pytest.raises(sd.InvalidArgumentError, match="non-negative int"):
        sd.DeltaData(history, version=-1)
    with pytest.raises(sd.DataNotFoundError, match="no Delta table"):
        sd.DeltaData(tmp_path / "nothing").validate()
    with pytest.raises(sd.ColumnNotFoundError, match="nope"):
        sd.DeltaData(history, columns=["nope"]).validate()
    with pytest.raises(sd.ColumnNotFoundError, match="nope"):
        sd.DeltaData(history, filters=[("nope", "=", 1)]).validate()
    with pytest.raises(sd.InvalidArgumentError, match="filters cannot be applied"):
        sd.DeltaData(history, filters=[("id", ">", "text")]).validate()


def test_missing_data_file(tmp_path):
    path = tmp_path / "t"
    write_deltalake(path, frame(100, 12), partition_by=["k"])
    _, _, adds, _ = log_state(path)
    os.remove(data_file(path, next(iter(adds.values()))))
    with pytest.raises(sd.DataNotFoundError, match=r"lists 1 data file\(s\) that do not exist"):
        sd.DeltaData(path).validate()


def test_unhandled_reader_feature(tmp_path):
    path = tmp_path / "t"
    write_deltalake(path, frame(10, 13))
    protocol, *_ = log_state(path)
    commit(path, [with_reader_features(protocol, "deletionVectors", "variantType")], operation="SET TBLPROPERTIES")
    with pytest.raises(sd.DataSourceError, match=r"variantType.*engine=\"spark\""):
        sd.DeltaData(path).validate()


def test_deletion_vector_of_no_active_file(dv_table):
    snap = delta_log.load_snapshot(str(dv_table), None, None, None)
    planned = [f for f in snap.files if f.deletes is None]  # as if the log listed fewer active files
    with pytest.raises(sd.DataSourceError, match="not one of the table's active files"):
        delta_log._with_deletes(planned, snap.filesystem, snap.root, snap.version, snap.uri)


def test_corrupt_deletion_vector_file(tmp_path, ctx):
    path = tmp_path / "t"
    write_deltalake(path, frame(100, 14))
    _, _, adds, _ = log_state(path)
    delete_rows(path, next(iter(adds)), [1, 2])
    dv = next(path.glob("deletion_vector_*.bin"))
    dv.write_bytes(dv.read_bytes()[:-1] + b"\0")
    with pytest.raises(sd.SparkDistError, match="checksum"):
        collect(sd.DeltaData(path), ctx)


def test_without_deltalake(history):
    code = (
        "import sys; sys.modules['deltalake'] = None\n"
        "import sparkdist as sd\n"
        f"path = {str(history)!r}\n"
        "try:\n    sd.distribute_job(len, path)\nexcept sd.DataSourceError as e:\n    print(e)\n"
        "try:\n    sd.DeltaData(path).validate()\nexcept sd.DataSourceError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.count("pip install 'sparkdist[delta]'") == 2, out


@pytest.mark.modes("standalone", "connect-server", "connect")
def test_engine_spark_without_delta_connector(ctx, history):
    with pytest.raises(sd.DataSourceError, match="Spark's Delta reader was tried and failed"):
        sd.DeltaData(history, engine="spark").validate(ctx)


class _DeltaByDeltalake:
    """A Spark data source named "delta" that reads with deltalake (a stand-in for Delta's connector,
    which this machine cannot download): what engine="spark" asks of Spark's Delta reader, read by
    the format's own reader. Only where the executors have deltalake (local, cluster)."""

    @staticmethod
    def register(session):
        from pyspark.sql.datasource import DataSource, DataSourceReader
        from pyspark.sql.pandas.types import from_arrow_schema

        def table(options):  # Spark's options are case-insensitive, as Delta's connector reads them
            from deltalake import DeltaTable

            options = {k.lower(): v for k, v in options.items()}
            t = DeltaTable(options["path"], version=int(options["versionasof"]) if "versionasof" in options else None)
            if "timestampasof" in options:
                t.load_as_version(options["timestampasof"])
            return t

        class Reader(DataSourceReader):
            def __init__(self, options):
                self.options = dict(options)

            def read(self, partition):
                import pyarrow as pa

                t = table(self.options)
                schema = pa.schema(t.schema().to_arrow())
                yield from pa.table(t.scan()).cast(pa.schema([(f.name, f.type) for f in schema])).to_batches()

        class Source(DataSource):
            @classmethod
            def name(cls):
                return "delta"

            def schema(self):
                import pyarrow as pa

                fields = pa.schema(table(dict(self.options)).schema().to_arrow())
                return from_arrow_schema(pa.schema([(f.name, f.type) for f in fields]))

            def reader(self, schema):
                return Reader(self.options)

        session.dataSource.register(Source)


@pytest.mark.modes("local", "cluster")
def test_engine_spark_reads_the_pinned_version(ctx, history):
    _DeltaByDeltalake.register(ctx.spark_session)
    src = sd.DeltaData(history, version=2, engine="spark", filters=[("id", ">=", 1100)], columns=["id", "x"])
    assert "version 2, Spark's Delta reader" in src.validate(ctx).source
    expected = reference(history, 2).to_pandas()
    expected = expected[expected["id"] >= 1100][["id", "x"]]
    same_rows(collect(src, ctx), pa.Table.from_pandas(expected, preserve_index=False), src.arrow_schema())
    latest = sd.DeltaData(history, engine="spark").prepare(ctx)  # pinned with deltalake on the driver
    assert "version 4" in repr(latest)
    stamps = {h["version"]: h["timestamp"] for h in DeltaTable(history).history()}
    at = datetime.datetime.fromtimestamp((stamps[1] + stamps[2]) / 2000, tz=datetime.timezone.utc)
    assert len(collect(sd.DeltaData(history, timestamp=at, engine="spark"), ctx)) == reference(history, 1).num_rows


# -- the bitmap decoder against an independent implementation ---------------------------------------


def test_roaring_decoder_against_pyroaring():
    pyroaring = pytest.importorskip("pyroaring")
    rng = np.random.default_rng(15)
    cases = [
        [],
        [0],
        list(range(70_000)),  # a run, across containers
        sorted(set(rng.integers(0, 1 << 20, 50_000).tolist())),  # bitmap containers
        sorted(set(rng.integers(0, 1 << 20, 500).tolist())),  # array containers
        [1, 2, 3, (1 << 32) + 5, (1 << 33) + 65_536, (1 << 40) + 7],  # several buckets
    ]
    for values in cases:
        for optimize in (False, True):
            bitmap = pyroaring.BitMap64(values)
            if optimize:
                bitmap.run_optimize()
            assert roaring.decode_roaring64(bitmap.serialize()).tolist() == values
            assert roaring.decode_roaring64(roaring.encode_roaring64(values)).tolist() == values
    small = pyroaring.BitMap([*range(10), 100_000])
    small.run_optimize()
    values32, end = roaring.decode_roaring32(small.serialize())
    assert values32.tolist() == [*range(10), 100_000] and end == len(small.serialize())
    for data in (b"", b"\x01\x02\x03\x04\x05", os.urandom(37)):
        assert roaring.z85_decode(roaring.z85_encode(data))[: len(data)] == data
    with pytest.raises(sd.DataSourceError):
        roaring.decode_delta_dv(b"\0\0\0\0")
