"""exec_by: one call per key group, the same groups and results in every compute context, whether
the rows are grouped in the driver, read from hive folders of the keys, or moved by a Spark shuffle."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

import sparkdist as sd


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    """Stores 0-5 (and a null store), two kinds; uneven group sizes."""
    rng = np.random.default_rng(3)
    n = 3000
    store = rng.choice([0, 1, 2, 3, 4, 5], n, p=[0.4, 0.3, 0.1, 0.1, 0.05, 0.05]).astype("float64")
    store[rng.choice(n, 40, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "store": pd.array(store, dtype="Int64"),
            "kind": rng.choice(["a", "b"], n),
            "amount": rng.gamma(2.0, 10.0, n),
        }
    )


@pytest.fixture(scope="module")
def hive(sales: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``sales`` in hive folders of ``store`` (the null store in __HIVE_DEFAULT_PARTITION__), 2 files each."""
    d = tmp_path_factory.mktemp("sales_by_store")
    table = pa.Table.from_pandas(sales, preserve_index=False)
    pads.write_dataset(
        table,
        d,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([("store", pa.int64())]), flavor="hive"),
        max_rows_per_file=400,
        max_rows_per_group=400,
    )
    return str(d)


def expected(sales: pd.DataFrame, keys: list[str]) -> dict[tuple, tuple[int, float]]:
    groups = sales.groupby(keys, dropna=False)
    out = {}
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        out[tuple(None if pd.isna(v) else v for v in key)] = (len(g), round(float(g["amount"].sum()), 6))
    return out


def size_and_sum(keys, group):
    # no assert in functions that run on executors: pytest's rewritten asserts need pytest there
    for name, value in keys.items():  # every row of the group has its keys (nulls included)
        col = group[name]
        if not (col.isna().all() if value is None else (col == value).all()):
            raise ValueError(f"rows of another group in {keys}")
    return len(group), round(float(group["amount"].sum()), 6)


def sources(ctx, sales, hive):
    """The data as a user of ``ctx`` would pass it: pandas, hive Parquet, and a Spark DataFrame on Spark."""
    out = {"pandas": sales, "hive parquet": hive}
    session = ctx.spark_session
    if session is not None:
        out["spark dataframe"] = session.createDataFrame(sales)
    return out


def test_groups_and_results_agree_with_pandas(ctx, sales, hive):
    for keys in (["store"], ["store", "kind"]):
        want = expected(sales, keys)
        for name, data in sources(ctx, sales, hive).items():
            got = sd.exec_by(size_and_sum, data, keys, compute_context=ctx)
            assert [tuple(g.keys.values()) for g in got] == sorted(want, key=lambda k: [(v is not None, v) for v in k])
            assert {k: v for k, v in got.to_dict().items()} == want, name
            assert all(g.status == "OK" and g.ok for g in got)
            assert {type(g.keys["store"]) for g in got} == {type(None), int}, name
            assert got[0].keys["store"] is None  # nulls sort first, as in Spark


def test_chunked_groups_stream_and_columns_always_hold_the_keys(ctx, sales, hive):
    def chunks(keys, group):
        parts = list(group)
        if not all(isinstance(p, pd.DataFrame) and len(p) and list(p.columns) == ["store", "amount"] for p in parts):
            raise ValueError("not chunks of the selected columns and the keys")
        return sum(len(p) for p in parts)

    sizes = {k: v[0] for k, v in expected(sales, ["store"]).items()}
    for name, data in sources(ctx, sales, hive).items():
        got = sd.exec_by(chunks, data, ["store"], chunked=True, columns=["amount"], compute_context=ctx)
        assert got.to_dict() == {k: sizes[k] for k in got.to_dict()} and len(got) == len(sizes), name


def test_filter_sees_every_group_with_its_rows_before_any_runs(ctx, sales, hive):
    seen = []

    def keep_big(frame):
        seen.append(frame)
        return frame[frame["rows"] >= 300]

    want = {k: v for k, v in expected(sales, ["store"]).items() if v[0] >= 300}
    for data in sources(ctx, sales, hive).values():
        got = sd.exec_by(size_and_sum, data, ["store"], filter=keep_big, compute_context=ctx)
        assert got.to_dict() == want
        assert list(seen[-1].columns) == ["store", "rows"] and seen[-1]["rows"].sum() == len(sales)
    assert sd.exec_by(size_and_sum, sales, ["store"], filter=lambda f: f.iloc[:0], compute_context=ctx) == []


def test_a_failing_group_keeps_the_others_or_ends_the_job(ctx, sales, hive):
    def fails_on_store_2(keys, group):
        if keys["store"] == 2:
            raise ValueError(f"bad store with {len(group)} rows")
        return len(group)

    for data in sources(ctx, sales, hive).values():
        with pytest.warns(RuntimeWarning, match="1 of 7 groups"):
            got = sd.exec_by(fails_on_store_2, data, ["store"], compute_context=ctx)
        bad = [g for g in got if not g.ok]
        assert len(bad) == 1 and bad[0].keys == {"store": 2}
        err = bad[0].result
        assert isinstance(err, sd.TaskError) and err.remote_type == "ValueError" and err.keys == {"store": 2}
        assert "store=2" in str(err) and "fails_on_store_2" in str(err) and "bad store" in bad[0].status
        assert err.host and "fails_on_store_2" in err.remote_traceback
        with pytest.raises(sd.JobError, match=r"the group store=2 of 'test_a_failing.*ValueError: bad store"):
            sd.exec_by(fails_on_store_2, data, ["store"], continue_on_failure=False, compute_context=ctx)


def draws(keys, group, extra=0):
    return (random.random(), float(np.random.random()), int(sd.task_rng().integers(1 << 40)) + extra)


def test_seeded_streams_follow_the_keys_not_the_context_or_the_other_groups(ctx, sales, hive):
    reference = sd.exec_by(draws, sales, ["store"], rng_seed=11, compute_context=sd.LocalComputeContext()).to_dict()
    assert len({v[2] for v in reference.values()}) == len(reference)  # each group its own stream
    for data in sources(ctx, sales, hive).values():
        assert sd.exec_by(draws, data, ["store"], rng_seed=11, compute_context=ctx).to_dict() == reference
    fewer = sales[sales["store"].isin([1, 4])]
    got = sd.exec_by(draws, fewer, ["store"], 5, rng_seed=11, compute_context=ctx).to_dict()
    assert got == {k: (*reference[k][:2], reference[k][2] + 5) for k in [(1,), (4,)]}
    assert sd.exec_by(draws, fewer, ["store"], rng_seed=12, compute_context=ctx).to_dict() != {
        k: reference[k] for k in [(1,), (4,)]
    }


def test_console_output_and_the_pandas_view(ctx, sales, capsys):
    def talk(keys, group, *, word):
        print(word, len(group))
        return keys["kind"]

    got = sd.exec_by(talk, sales, ["kind"], word="rows:", console_output=True, compute_context=ctx)
    out = capsys.readouterr().out
    for kind, size in sales.groupby("kind").size().items():
        assert f"[kind={kind!r}] rows: {size}" in out
    frame = got.to_pandas()
    assert list(frame.columns) == ["kind", "result", "status"] and list(frame["result"]) == ["a", "b"]


@pytest.mark.modes("local", "cluster", "standalone")
def test_hive_folders_of_the_keys_run_without_a_shuffle(spark_ctx, sales, hive, spark):
    """Classic Spark's status tracker: the hive layout gives one stage (no shuffle); a DataFrame more."""
    tracker = spark.sparkContext._jsc.sc().statusTracker()

    def stages(data):
        job = sd.exec_by(size_and_sum, data, ["store"], compute_context=spark_ctx, wait=False)
        job.result(timeout=120)
        ids = list(tracker.getJobIdsForTag(job.id))
        return sum(len(tracker.getJobInfo(i).get().stageIds()) for i in ids)

    assert stages(hive) == 1
    assert stages(spark.createDataFrame(sales)) >= 2  # the shuffle (adaptive execution may add a job)


def test_bad_input_is_named_before_any_work(sales, tmp_path):
    def fit(keys, group):
        return len(group)

    nested = pd.DataFrame({"k": [[1], [2]], "x": [1.0, 2.0]})
    cases = [
        (dict(keys=[]), sd.InvalidArgumentError, "keys must name at least one column"),
        (dict(keys=[1]), sd.ArgumentTypeError, "keys must be a list of column names"),
        (dict(keys=["store", "store"]), sd.InvalidArgumentError, "must not repeat"),
        (dict(keys=["shop"]), sd.ColumnNotFoundError, "shop"),
        (dict(keys=["store"], filter=3), sd.ArgumentTypeError, "filter"),
        (dict(keys=["store"], columns=["nope"]), sd.ColumnNotFoundError, "nope"),
        (dict(keys=["store"], rng_seed=1.5), sd.ArgumentTypeError, "rng_seed"),
    ]
    for kwargs, error, text in cases:
        with pytest.raises(error, match=text):
            sd.exec_by(fit, sales, **kwargs)
    with pytest.raises(sd.ArgumentTypeError, match=r"'k' has type list<item: int64>.*not hashable"):
        sd.exec_by(fit, nested, ["k"])
    with pytest.raises(sd.ArgumentTypeError, match=r"func '.*one_arg' must take two positional arguments"):

        def one_arg(group):
            return 1

        sd.exec_by(one_arg, sales, ["store"])
    with pytest.raises(sd.ArgumentTypeError, match="1 positional and 0 keyword"):
        sd.exec_by(fit, sales, ["store"], 99)
    with pytest.raises(sd.ArgumentTypeError, match="must return a pandas DataFrame"):
        sd.exec_by(fit, sales, ["store"], filter=lambda f: list(f["store"]))
    with pytest.raises(sd.InvalidArgumentError, match="not groups of the data, e.g. \\(99,\\)"):
        sd.exec_by(fit, sales, ["store"], filter=lambda f: pd.DataFrame({"store": [99]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sd.exec_by(fit, sales.iloc[:0], ["store"]) == []
