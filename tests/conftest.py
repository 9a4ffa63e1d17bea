"""Test set-up: one real SparkSession per pytest process, mode chosen by --spark-mode.

- no option (``none``): the no-JVM contexts (Local, LocalParallel), sources, errors, doctests,
  and the end-to-end runs (demo, spark-submit) that start their own Spark.
- ``--spark-mode=local``: ``local[2]``; ``cluster``: ``local-cluster[2,1,1024]``;
  ``connect``: ``SparkSession.builder.remote("local[2]")``.

Tests that take the ``ctx`` fixture run in every process, with the contexts of that process.
Tests that take ``spark`` / ``spark_ctx`` run only in the Spark modes. A test marked
``@pytest.mark.modes(...)`` is skipped, with a reason, in the other modes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("SPARK_CONF_DIR", str(ROOT / "conf"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
# Credentials for the tests' own S3 server (moto, on 127.0.0.1). Set before any JVM starts, so
# that executors inherit them too; the endpoint travels in each s3:// URI.
for key, value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ.setdefault(key, value)

MODES = {"none": None, "local": "local[2]", "cluster": "local-cluster[2,1,1024]", "connect": "local[2]"}
SPARK_FIXTURES = {"spark", "spark_ctx"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--spark-mode", choices=sorted(MODES), default="none", help="which SparkSession the tests use")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "modes(*names): run only in these --spark-mode values")


def _mode(config: pytest.Config) -> str:
    return str(config.getoption("--spark-mode"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mode = _mode(config)
    keep, drop = [], []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        uses_spark = bool(names & SPARK_FIXTURES)
        generic = "ctx" in names
        marker = item.get_closest_marker("modes")
        if mode != "none" and not (uses_spark or generic or (marker and mode in marker.args)):
            drop.append(item)  # runs in the no-JVM process already
            continue
        if marker and mode not in marker.args:
            item.add_marker(pytest.mark.skip(reason=f"runs only in --spark-mode {', '.join(marker.args)}"))
        elif mode == "none" and uses_spark:
            item.add_marker(
                pytest.mark.skip(reason="needs a SparkSession: run with --spark-mode=local|cluster|connect")
            )
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def spark_mode(pytestconfig: pytest.Config) -> str:
    return _mode(pytestconfig)


@pytest.fixture(scope="session")
def spark(spark_mode: str) -> Iterator[object]:
    from pyspark.sql import SparkSession

    master = MODES[spark_mode]
    assert master is not None
    builder = SparkSession.builder.appName(f"sparkdist-tests-{spark_mode}")
    builder = builder.remote(master) if spark_mode == "connect" else builder.master(master)
    if spark_mode == "cluster":
        # a Spark result limit that test_limits.py can pass without moving a gigabyte
        builder = builder.config("spark.executor.memory", "768m").config("spark.driver.maxResultSize", "100m")
    session = builder.getOrCreate()
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_ctx(spark: object) -> object:
    from sparkdist import SparkComputeContext

    return SparkComputeContext(spark)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def _parallel_ctx() -> Iterator[object]:
    from sparkdist import LocalParallelComputeContext

    ctx = LocalParallelComputeContext(2)
    yield ctx
    ctx.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ctx" in metafunc.fixturenames:
        kinds = ["local", "parallel"] if _mode(metafunc.config) == "none" else ["spark"]
        metafunc.parametrize("ctx", kinds, indirect=True)


@pytest.fixture
def ctx(request: pytest.FixtureRequest) -> object:
    from sparkdist import LocalComputeContext

    if request.param == "local":
        return LocalComputeContext()
    if request.param == "parallel":
        return request.getfixturevalue("_parallel_ctx")
    return request.getfixturevalue("spark_ctx")


@pytest.fixture(scope="session")
def numbers() -> pd.DataFrame:
    """A small table with floats, ints, a category and some missing values."""
    rng = np.random.default_rng(7)
    n = 20_000
    x = rng.normal(10.0, 3.0, n)
    x[rng.choice(n, 50, replace=False)] = np.nan
    return pd.DataFrame({"x": x, "k": rng.integers(0, 100, n), "g": rng.choice(["a", "b", "c"], n)})


@pytest.fixture(scope="session")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory, numbers: pd.DataFrame) -> Path:
    """``numbers`` written as 4 files of 5 row groups each, plus a _SUCCESS marker."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("numbers")
    for i in range(4):
        part = numbers.iloc[i * 5000 : (i + 1) * 5000]
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), d / f"part-{i:05d}.parquet", row_group_size=1000
        )
    (d / "_SUCCESS").write_text("")
    return d


@pytest.fixture
def no_spark_job_running():
    """A check for after a test's jobs: the context's classic session has no active Spark job
    (polled for 20 s). Spark Connect has no status tracker on the client, so there it checks nothing."""

    def check(ctx: object) -> None:
        import time

        session = getattr(ctx, "_session", None)
        if session is None or type(session).__module__.startswith("pyspark.sql.connect"):
            return
        tracker = session.sparkContext.statusTracker()
        deadline = time.monotonic() + 20
        while tracker.getActiveJobsIds() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(tracker.getActiveJobsIds()) == []

    return check
