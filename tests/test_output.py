"""output=: each split's (group's, call's) frames written from where they are made to a Parquet dataset
or a Delta table, one commit on the driver, the same files in every context; a failed, cancelled or
killed job leaves the destination as it was, and a retried task never duplicates rows."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import warnings
from pathlib import Path

import _s3  # tests/_s3.py: moto's S3 server in a child process
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sparkdist as sd
from sparkdist.outputs.parquet import OutputExistsError

# -- functions the workers run (module level: they travel by value) --------------------------------


def scaled(split: pd.DataFrame) -> pd.DataFrame:
    return split.assign(y=split["x"] * 2.0)


def chunks_scaled(chunks):
    for chunk in chunks:
        yield pa.Table.from_pandas(chunk.assign(y=chunk["x"] * 2.0), preserve_index=False)


def fails_on_k3(split: pd.DataFrame) -> pd.DataFrame:
    if (split["k"] == 3).any():
        raise ValueError("no k=3 here")
    return split


def nothing(split: pd.DataFrame) -> None:
    return None


def per_group(keys: dict, group: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"n": [len(group)], "total": [float(group["x"].sum())]})


def per_call_frame(split: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"n": [len(split)], "total": [0.0]})


def per_call(i: int) -> pd.DataFrame:
    return pd.DataFrame({"i": [i] * 3, "sq": [i * i] * 3})


def typed_by_split(split: pd.DataFrame) -> pd.DataFrame:
    """Split with k=0 in it: 'v' is an int; others: a string."""
    return pd.DataFrame({"v": [1, 2]}) if (split["k"] == 0).any() else pd.DataFrame({"v": ["a", "b"]})


def widening_by_split(split: pd.DataFrame) -> pa.Table:
    first = int(split["k"].iloc[0]) % 2 == 0
    return pa.table({"v": pa.array([1, 2], pa.int32() if first else pa.int64()), "s": pa.array([None, None])})


def waits_for(split: pd.DataFrame, started: str, go: str):
    yield split.iloc[:5]
    Path(started).touch()
    while not os.path.exists(go):
        import time

        time.sleep(0.05)
    yield split.iloc[5:]


def killed_once(chunks, marker: str):
    """The first attempt of the split holding k=7 writes a chunk of it, then its process is killed."""
    for chunk in chunks:
        yield chunk
        if (chunk["k"] == 7).any() and not os.path.exists(marker):
            Path(marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)


# -- data ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> str:
    """4,000 rows in 5 files of 4 row groups, k = 0..19: one value of k per row group."""
    d = tmp_path_factory.mktemp("events")
    n = 4000
    frame = pd.DataFrame({"x": np.arange(n, dtype="float64"), "k": np.arange(n) // 200, "g": np.arange(n) % 3})
    for i in range(5):
        part = frame.iloc[i * 800 : (i + 1) * 800]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), d / f"part-{i}.parquet", row_group_size=200)
    return str(d)


def twenty(events: str, **options) -> sd.ParquetData:
    """``events`` read as 20 splits, one row group (one value of k) each, in every context."""
    return sd.ParquetData(events, split_bytes=1, **options)


def visible(folder: Path) -> list[str]:
    """What a reader sees: the files below ``folder``, hidden ones (``_``/``.``) left out."""
    if not folder.exists():
        return []
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files if not f.startswith(("_", "."))]
    return sorted(found)


def read(path: Path) -> pd.DataFrame:
    """The output as pyarrow reads it (files in name order, hive folders as columns)."""
    return pq.read_table(path).to_pandas()


# -- round trips -----------------------------------------------------------------------------------


def test_round_trip_keeps_each_splits_rows_in_order(ctx, events, tmp_path):
    expected = pd.concat(sd.distribute_job(scaled, twenty(events), compute_context=ctx), ignore_index=True)
    out = sd.distribute_job(scaled, twenty(events), output=tmp_path / "out", compute_context=ctx)
    assert isinstance(out, sd.ParquetData)
    assert out.report.rows == 4000 and out.report.files == len(visible(tmp_path / "out")) >= 1
    assert out.report.bytes == sum((tmp_path / "out" / f).stat().st_size for f in visible(tmp_path / "out"))
    pd.testing.assert_frame_equal(read(tmp_path / "out"), expected)
    assert (tmp_path / "out" / "_SUCCESS").exists() and not (tmp_path / "out" / "_sparkdist_temporary").exists()
    # the returned source is the next job's data
    again = sd.distribute_job(len, out, reduce=lambda a, b: a + b, compute_context=ctx)
    assert again == 4000


def test_generator_output_from_a_chunked_job(ctx, events, tmp_path):
    data = sd.ParquetData(events, rows_per_chunk=100)
    out = sd.distribute_job(chunks_scaled, data, chunked=True, output=tmp_path / "out", compute_context=ctx)
    got = read(tmp_path / "out")
    pd.testing.assert_frame_equal(got, scaled(pq.read_table(events).to_pandas()))
    assert out.report.rows == 4000


def test_modes(ctx, events, tmp_path):
    dest = tmp_path / "out"
    sd.distribute_job(scaled, events, output=dest, compute_context=ctx)
    first = visible(dest)
    with pytest.raises(OutputExistsError, match="mode='error'"):
        sd.distribute_job(scaled, events, output=dest, compute_context=ctx)
    assert visible(dest) == first
    out = sd.distribute_job(scaled, events, output=dest, mode="append", compute_context=ctx)
    assert len(read(dest)) == 8000 and out.report.rows == 4000
    out = sd.distribute_job(nothing, events, output=sd.ParquetData(dest), mode="overwrite", compute_context=ctx)
    assert visible(dest) == [] and out.report.rows == 0 and out.report.files == 0
    assert (dest / "_SUCCESS").exists()


def test_partition_by_writes_hive_folders(ctx, events, tmp_path):
    out = sd.distribute_job(scaled, events, output=tmp_path / "out", partition_by=["g"], compute_context=ctx)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["g=0", "g=1", "g=2"]
    one = next((tmp_path / "out" / "g=1").iterdir())
    assert "g" not in pq.read_schema(one).names  # partition columns live in the folder names only
    got = pd.concat(sd.distribute_job(lambda s: s, out, compute_context=ctx), ignore_index=True)
    want = scaled(pq.read_table(events).to_pandas())
    got = got.sort_values("x", ignore_index=True)
    assert got["g"].tolist() == want["g"].tolist() and got["y"].tolist() == want["y"].tolist()
    # groups read from the hive folders the output has (no shuffle), written with their key
    res = sd.exec_by(per_group, out, ["g"], output=tmp_path / "by_g", continue_on_failure=False, compute_context=ctx)
    assert read(tmp_path / "by_g")[["g", "n"]].values.tolist() == [[0, 1334], [1, 1333], [2, 1333]]
    assert res.report.rows == 3


def test_spark_dataframe_input(spark, spark_ctx, events, tmp_path):
    frame = spark.read.parquet(events)
    out = sd.distribute_job(scaled, frame, output=tmp_path / "out", compute_context=spark_ctx)
    got = read(tmp_path / "out").sort_values("x", ignore_index=True)
    pd.testing.assert_frame_equal(got, scaled(pq.read_table(events).to_pandas()))
    assert out.report.rows == 4000


def test_partition_values_that_need_escaping(tmp_path):
    frame = pd.DataFrame({"p": ["a b", "50%", "x/y", None], "v": [1, 2, 3, 4]})
    out = sd.distribute_job(lambda s: s, frame, output=tmp_path / "out", partition_by="p")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == [
        "p=50%25",
        "p=__HIVE_DEFAULT_PARTITION__",
        "p=a b",
        "p=x%2Fy",
    ]
    back = pd.concat(sd.distribute_job(lambda s: s, out), ignore_index=True).sort_values("v", ignore_index=True)
    assert back["p"].tolist()[:3] == ["a b", "50%", "x/y"] and pd.isna(back["p"].iloc[3])


def test_exec_by_adds_the_keys(ctx, events, tmp_path):
    res = sd.exec_by(per_group, events, ["k"], output=tmp_path / "out", compute_context=ctx)
    assert isinstance(res, sd.GroupResults) and [r.result for r in res] == [1] * 20
    got = read(tmp_path / "out")
    assert got.columns.tolist() == ["k", "n", "total"] and got["k"].tolist() == list(range(20))
    assert got["n"].tolist() == [200] * 20 and res.output.report.rows == 20
    # a key the function returns itself is not added twice
    sd.exec_by(lambda keys, g: g[["k", "x"]].head(1), events, "k", output=tmp_path / "own", compute_context=ctx)
    assert read(tmp_path / "own").columns.tolist() == ["k", "x"]


def test_exec_by_keeps_the_groups_that_succeeded(ctx, events, tmp_path):
    def fit(keys, group):
        if keys["k"] == 3:
            raise ValueError("cannot fit store 3")
        return group.head(2)

    with pytest.warns(RuntimeWarning, match="1 of 20 groups"):
        res = sd.exec_by(fit, events, ["k"], output=tmp_path / "out", compute_context=ctx)
    assert not res[3].ok and isinstance(res[3].result, sd.TaskError)
    assert sorted(set(read(tmp_path / "out")["k"])) == [k for k in range(20) if k != 3]
    with pytest.raises(sd.JobError, match="cannot fit store 3"):
        sd.exec_by(fit, events, ["k"], output=tmp_path / "strict", continue_on_failure=False, compute_context=ctx)
    assert visible(tmp_path / "strict") == []
    out = sd.exec_by(per_group, events, "k", output=tmp_path / "ok", continue_on_failure=False, compute_context=ctx)
    assert isinstance(out, sd.ParquetData) and out.report.rows == 20


def test_exec_job_output(ctx, tmp_path):
    res = sd.exec_job(per_call, elem_args=[1, 2, 3], output=tmp_path / "out", compute_context=ctx)
    assert list(res) == [3, 3, 3] and res.output.report.rows == 9
    assert read(tmp_path / "out")["i"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    named = sd.exec_job(
        per_call, elem_args={"a": 4}, output=tmp_path / "out", mode="append", continue_on_failure=False,
        compute_context=ctx,
    )  # fmt: skip
    assert isinstance(named, sd.ParquetData) and len(read(tmp_path / "out")) == 12


def test_index_only_when_named(tmp_path):
    sd.distribute_job(lambda s: s.set_index("x"), pd.DataFrame({"x": [1, 2], "v": [3, 4]}), output=tmp_path / "a")
    assert read(tmp_path / "a").columns.tolist() == ["x", "v"]
    sd.distribute_job(lambda s: s.iloc[::-1], pd.DataFrame({"x": [1, 2], "v": [3, 4]}), output=tmp_path / "b")
    assert read(tmp_path / "b").columns.tolist() == ["x", "v"]


# -- schemas ---------------------------------------------------------------------------------------


def test_schema_mismatch_is_named_and_nothing_is_written(ctx, events, tmp_path):
    with pytest.raises(
        sd.SchemaConflictError, match=r"column 'v' is (large_)?string in the frames of split 1 but int64 in split 0"
    ):
        sd.distribute_job(typed_by_split, twenty(events), output=tmp_path / "out", compute_context=ctx)
    assert not (tmp_path / "out").exists()


def test_safe_widening(ctx, events, tmp_path):
    out = sd.distribute_job(widening_by_split, twenty(events), output=tmp_path / "out", compute_context=ctx)
    assert out.arrow_schema().field("v").type == pa.int64()
    got = pd.concat(sd.distribute_job(lambda s: s, out, compute_context=ctx), ignore_index=True)
    assert got["v"].tolist()[:2] == [1, 2] and got["s"].isna().all()


# -- failures: the destination stays as it was -----------------------------------------------------


def test_a_failed_split_leaves_parquet_untouched(ctx, events, tmp_path):
    dest = tmp_path / "out"
    sd.distribute_job(scaled, events, output=dest, compute_context=ctx)
    before = visible(dest)
    with pytest.raises(sd.JobError, match="no k=3 here"):
        sd.distribute_job(fails_on_k3, twenty(events), output=dest, mode="append", compute_context=ctx)
    with pytest.raises(sd.JobError, match="no k=3 here"):
        sd.distribute_job(fails_on_k3, twenty(events), output=dest, mode="overwrite", compute_context=ctx)
    assert visible(dest) == before and not (dest / "_sparkdist_temporary").exists()
    with pytest.raises(sd.JobError):
        sd.distribute_job(fails_on_k3, twenty(events), output=tmp_path / "new", compute_context=ctx)
    assert not (tmp_path / "new").exists()


def test_a_failed_split_leaves_delta_untouched(ctx, events, tmp_path):
    pytest.importorskip("deltalake")
    from deltalake import DeltaTable

    table = sd.DeltaData(str(tmp_path / "table"))
    sd.distribute_job(scaled, events, output=table, compute_context=ctx)
    files = sorted(os.listdir(tmp_path / "table"))
    with pytest.raises(sd.JobError, match="no k=3 here"):
        sd.distribute_job(fails_on_k3, twenty(events), output=table, mode="append", compute_context=ctx)
    assert DeltaTable(str(tmp_path / "table")).version() == 0
    assert sorted(os.listdir(tmp_path / "table")) == files


def test_cancel_mid_write_leaves_the_destination_untouched(ctx, events, tmp_path):
    started, go = tmp_path / "started", tmp_path / "go"
    dest = tmp_path / "out"
    sd.distribute_job(scaled, events, output=dest, compute_context=ctx)
    before = visible(dest)
    job = sd.distribute_job(
        waits_for, twenty(events), str(started), str(go), output=dest, mode="overwrite", wait=False, compute_context=ctx
    )
    while not started.exists() and not job.done():
        job.wait(0.05)
    assert job.cancel()
    go.touch()  # whatever still runs can end
    with pytest.raises(concurrent.futures.CancelledError):
        job.result()
    assert visible(dest) == before


@pytest.mark.modes("cluster", "standalone")
def test_a_killed_executor_gives_each_row_once(spark_ctx, events, tmp_path):
    data = twenty(events, rows_per_chunk=50)
    out = sd.distribute_job(
        killed_once, data, str(tmp_path / "killed"), chunked=True, output=tmp_path / "out", compute_context=spark_ctx
    )
    assert (tmp_path / "killed").exists()  # an attempt died mid-write and Spark ran the split again
    got = read(tmp_path / "out").sort_values("x", ignore_index=True)
    pd.testing.assert_frame_equal(got, pq.read_table(events).to_pandas())
    assert out.report.rows == 4000


# -- Delta tables ----------------------------------------------------------------------------------


def test_delta_versions_readable_by_deltalake(ctx, events, tmp_path):
    pytest.importorskip("deltalake")
    from deltalake import DeltaTable

    path = str(tmp_path / "table")
    v0 = sd.distribute_job(scaled, events, output=sd.DeltaData(path), partition_by=["g"], compute_context=ctx)
    assert isinstance(v0, sd.DeltaData) and v0.pinned_version == 0 and v0.report.version == 0
    v1 = sd.distribute_job(scaled, events, output=sd.DeltaData(path), mode="append", compute_context=ctx)
    assert v1.pinned_version == 1
    assert sd.distribute_job(len, v1, reduce=lambda a, b: a + b, compute_context=ctx) == 8000  # old and new rows
    v2 = sd.distribute_job(nothing, events, output=sd.DeltaData(path), mode="append", compute_context=ctx)
    assert v2.pinned_version == 2 and v2.report.files == 0
    v3 = sd.exec_by(
        per_group, events, "k", output=sd.DeltaData(path), mode="overwrite", partition_by=["k"], compute_context=ctx
    )
    table = DeltaTable(path)
    assert table.version() == 3 == v3.output.pinned_version
    assert [h["operation"] for h in table.history()][::-1][:2] == ["CREATE TABLE", "WRITE"]
    assert table.metadata().partition_columns == ["k"]  # overwrite with other partition columns replaced them
    with pytest.raises(sd.JobError, match=r"partition_by names column\(s\) \['k'\]"):  # the table's partitioning
        sd.distribute_job(per_call_frame, events, output=sd.DeltaData(path), mode="append", compute_context=ctx)
    assert DeltaTable(path, version=0).to_pyarrow_table().num_rows == 4000
    assert DeltaTable(path, version=1).to_pyarrow_table().num_rows == 8000
    got = DeltaTable(path).to_pyarrow_table().to_pandas().sort_values("k", ignore_index=True)
    assert got["n"].tolist() == [200] * 20


def test_two_concurrent_delta_appends_both_land(ctx, events, tmp_path):
    pytest.importorskip("deltalake")
    from deltalake import DeltaTable

    path = str(tmp_path / "table")
    sd.distribute_job(scaled, events, output=sd.DeltaData(path), compute_context=ctx)
    jobs = [
        sd.distribute_job(scaled, events, output=sd.DeltaData(path), mode="append", wait=False, compute_context=ctx)
        for _ in range(2)
    ]
    versions = sorted(job.result().pinned_version for job in jobs)
    assert versions == [1, 2]
    assert DeltaTable(path).to_pyarrow_table().num_rows == 12000


# -- bad input, before any job ---------------------------------------------------------------------


def test_bad_arguments_fail_before_any_job(events, tmp_path, monkeypatch):
    import sys

    with pytest.raises(sd.InvalidArgumentError, match="output= and reduce= cannot be combined"):
        sd.distribute_job(scaled, events, output=tmp_path / "o", reduce=lambda a, b: a)
    with pytest.raises(sd.InvalidArgumentError, match="overlap"):
        sd.distribute_job(scaled, events, output=os.path.join(events, "out"))
    with pytest.raises(sd.InvalidArgumentError, match="mode must be one of"):
        sd.distribute_job(scaled, events, output=tmp_path / "o", mode="replace")
    with pytest.raises(sd.InvalidArgumentError, match="applies only with output="):
        sd.distribute_job(scaled, events, mode="append")
    with pytest.raises(sd.ArgumentTypeError, match="output must be a path"):
        sd.distribute_job(scaled, events, output=42)
    with pytest.raises(sd.JobError, match=r"partition_by names column\(s\) \['nope'\]"):
        sd.distribute_job(scaled, events, output=tmp_path / "o", partition_by=["nope"])
    with pytest.raises(sd.JobError, match="ArgumentTypeError: with output=, the function must return a pandas"):
        sd.exec_job(lambda: 42, output=tmp_path / "o", continue_on_failure=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(sd.InvalidArgumentError, match="is a file"):
        sd.distribute_job(scaled, events, output=tmp_path / "file")
    with pytest.raises(sd.InvalidArgumentError, match="names an old version"):
        sd.distribute_job(scaled, events, output=sd.DeltaData(str(tmp_path / "t"), version=3))
    monkeypatch.setitem(sys.modules, "deltalake", None)
    with pytest.raises(sd.DependencyError, match=r"pip install 'sparkdist\[delta\]'"):
        sd.distribute_job(scaled, events, output=sd.DeltaData(str(tmp_path / "t")))
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()


# -- S3 --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("moto.server", reason="a test-only library, not in the runtime set of make test-runtime")
    with _s3.moto_server() as server:
        server.make_bucket("out")
        yield server


def test_s3_parquet_and_delta(ctx, events, s3, monkeypatch):
    import uuid

    name = uuid.uuid4().hex[:8]
    uri = f"s3://out/{name}?{s3.query}"
    out = sd.distribute_job(scaled, events, output=uri, partition_by=["g"], compute_context=ctx)
    assert out.report.rows == 4000
    got = pd.concat(sd.distribute_job(lambda s: s, out, compute_context=ctx), ignore_index=True)
    assert len(got) == 4000 and set(got["g"]) == {0, 1, 2}
    pytest.importorskip("deltalake")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)  # pyarrow and deltalake both read it
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    table = sd.DeltaData(f"s3://out/{name}-delta")
    v0 = sd.distribute_job(scaled, events, output=table, compute_context=ctx)
    v1 = sd.distribute_job(scaled, events, output=table, mode="append", compute_context=ctx)
    assert (v0.pinned_version, v1.pinned_version) == (0, 1)
    assert sd.distribute_job(len, v1, reduce=lambda a, b: a + b, compute_context=ctx) == 8000


def test_warnings_are_not_raised_for_empty_outputs(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sd.distribute_job(nothing, pd.DataFrame({"x": [1]}), output=tmp_path / "out")
    assert out.report == sd.WriteReport(0, 0, 0, str(tmp_path / "out"), None)
