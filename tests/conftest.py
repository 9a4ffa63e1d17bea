"""Test set-up: one real SparkSession per pytest process, mode chosen by --spark-mode.

- no option (``none``): the no-JVM contexts (Local, LocalParallel), sources, errors, doctests,
  and the end-to-end runs (demo, spark-submit) that start their own Spark.
- ``--spark-mode=local``: ``local[2]``; ``cluster``: ``local-cluster[2,1,1024]``;
  ``connect``: ``SparkSession.builder.remote("local[2]")``.
- ``--spark-mode=standalone``: a real standalone master and 2 workers (1 core, 1g each) started by
  ``tests/_cluster.py``; the session is a classic driver in this process (``spark://127.0.0.1:PORT``).
- ``--spark-mode=connect-server``: the same master and workers plus a separate Spark Connect server
  process; the session is ``SparkSession.builder.remote("sc://127.0.0.1:PORT")``.

In the two server modes the executors run a Python without sparkdist (and pyspark from Spark's own
zips), as on a real cluster; before the first test a probe job checks that, and the session ends with
a clear message if not. Every server process is stopped at the end, also when the run is interrupted.

Tests that take the ``ctx`` fixture run in every process, with the contexts of that process.
Tests that take ``spark`` / ``spark_ctx`` run only in the Spark modes; ``cluster`` (the running servers:
``master_url``, ``add_worker()``, ...) only in the two server modes, ``connect_url`` only in
``connect-server``. A test marked ``@pytest.mark.modes(...)`` is skipped, with a reason, in the other modes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _cluster  # tests/_cluster.py: the servers of the standalone and connect-server modes
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

MODES = {
    "none": None,
    "local": "local[2]",
    "cluster": "local-cluster[2,1,1024]",
    "connect": "local[2]",
    "standalone": "spark://127.0.0.1:PORT",  # started by tests/_cluster.py
    "connect-server": "sc://127.0.0.1:PORT",  # started by tests/_cluster.py
}
SERVER_MODES = ("standalone", "connect-server")
SPARK_FIXTURES = {"spark", "spark_ctx"}
#: fixtures that exist only in some modes: name -> those modes
SERVER_FIXTURES = {"cluster": SERVER_MODES, "connect_url": ("connect-server",)}
#: what the session fixtures of the server modes report at the end of the run
_SUMMARY: list[str] = []


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
        servers = [SERVER_FIXTURES[n] for n in sorted(names & set(SERVER_FIXTURES))]
        generic = "ctx" in names
        marker = item.get_closest_marker("modes")
        if mode != "none" and not (uses_spark or servers or generic or (marker and mode in marker.args)):
            drop.append(item)  # runs in the no-JVM process already
            continue
        if marker and mode not in marker.args:
            item.add_marker(pytest.mark.skip(reason=f"runs only in --spark-mode {', '.join(marker.args)}"))
        elif servers and any(mode not in modes for modes in servers):
            wanted = min(servers, key=len)
            item.add_marker(pytest.mark.skip(reason=f"needs the servers of --spark-mode {'|'.join(wanted)}"))
        elif mode == "none" and uses_spark:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"needs a SparkSession: run with --spark-mode={'|'.join(m for m in MODES if m != 'none')}"
                )
            )
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def spark_mode(pytestconfig: pytest.Config) -> str:
    return _mode(pytestconfig)


@pytest.fixture(scope="session")
def cluster(spark_mode: str) -> Iterator[_cluster.Cluster]:
    """The servers of --spark-mode=standalone|connect-server (a ``tests/_cluster.py`` ``Cluster``):
    ``master_url``, ``connect_url``, ``executor_python``, ``spark_home``, ``add_worker()``,
    ``stop_worker()``, ``wait_for_executors()``. Started once per pytest process, stopped at its end."""
    if spark_mode not in SERVER_MODES:
        pytest.skip("needs --spark-mode=standalone|connect-server")
    started = time.monotonic()
    try:
        python = _cluster.executor_python(log=lambda line: _SUMMARY.append(f"{spark_mode}: {line}"))
        venv_ready = time.monotonic()
        servers = _cluster.Cluster(executor_python=python, spark_conf_dir=ROOT / "conf")
        servers.start(
            workers=2,
            cores=1,
            memory="1g",
            # the Connect server's settings for test_limits.py, as the classic session's below
            connect={"spark.executor.memory": "768m", "spark.driver.maxResultSize": "100m"}
            if spark_mode == "connect-server"
            else None,
        )
    except _cluster.ClusterError as err:
        pytest.exit(f"--spark-mode={spark_mode}: the test servers did not start:\n{err}", returncode=1)
    _SUMMARY.append(
        f"{spark_mode}: executors' Python ready in {venv_ready - started:.1f} s, servers in "
        f"{time.monotonic() - venv_ready:.1f} s ({servers.master_url}"
        + (f", {servers.connect_url}" if servers.connect_url else "")
        + ")"
    )
    yield servers
    left = servers.stop()
    if left:
        lines = "\n".join(f"  {pid}: {_cluster.short_cmdline(cmd)[:300]}" for pid, cmd in left.items())
        raise _cluster.ClusterError(f"processes of the test servers outlived them (SIGKILLed now):\n{lines}")
    _SUMMARY.append(f"{spark_mode}: all server processes stopped")


@pytest.fixture(scope="session")
def connect_url(spark_mode: str, request: pytest.FixtureRequest) -> str:
    """``sc://127.0.0.1:PORT`` of the separate Spark Connect server (--spark-mode=connect-server only)."""
    if spark_mode != "connect-server":
        pytest.skip("needs --spark-mode=connect-server")
    servers: _cluster.Cluster = request.getfixturevalue("cluster")
    assert servers.connect_url is not None
    return servers.connect_url


@pytest.fixture(scope="session")
def spark(spark_mode: str, request: pytest.FixtureRequest) -> Iterator[object]:
    from pyspark.sql import SparkSession

    master = MODES[spark_mode]
    assert master is not None
    builder = SparkSession.builder.appName(f"sparkdist-tests-{spark_mode}")
    servers: _cluster.Cluster | None = request.getfixturevalue("cluster") if spark_mode in SERVER_MODES else None
    python_before = os.environ["PYSPARK_PYTHON"]
    if servers is not None and servers.connect_url:
        builder = builder.remote(servers.connect_url)  # the server's own environment picks the executors' Python
    elif servers is not None:
        # Spark 4.3's classic Python driver gives executors the Python named by its PYSPARK_PYTHON
        # when the SparkContext starts (spark.pyspark.python / spark.executorEnv.* are not consulted)
        os.environ["PYSPARK_PYTHON"] = str(servers.executor_python)
        builder = builder.master(servers.master_url)
    else:
        builder = builder.remote(master) if spark_mode == "connect" else builder.master(master)
    if spark_mode in ("cluster", "standalone"):
        # a Spark result limit that test_limits.py can pass without moving a gigabyte; executors fit a 1g worker
        builder = builder.config("spark.executor.memory", "768m").config("spark.driver.maxResultSize", "100m")
    started = time.monotonic()
    try:
        session = builder.getOrCreate()
    except Exception as err:
        if servers is None:
            raise
        pytest.exit(f"--spark-mode={spark_mode}: no session: {err}\n{servers.log_tails()}", returncode=1)
    if servers is not None:
        _check_executors(session, servers, spark_mode, started)
    yield session
    session.stop()
    os.environ["PYSPARK_PYTHON"] = python_before


def _check_executors(session: Any, servers: _cluster.Cluster, spark_mode: str, started: float) -> None:
    """Before the first test: the session has its 2 executors, and they run the executors' Python,
    cannot import sparkdist and load pyspark from Spark's zip; otherwise the run stops here."""
    try:
        assert [tuple(r) for r in session.range(1).collect()] == [(0,)]
        servers.wait_for_executors(2, timeout=90)
        reports = _cluster.probe_executors(session, partitions=4)
        servers.executor_reports = reports
    except Exception as err:
        pytest.exit(f"--spark-mode={spark_mode}: no working executors: {err}\n{servers.log_tails()}", returncode=1)
    problem = _cluster.check_executors(reports, servers.executor_python)
    if problem:
        pytest.exit(
            f"--spark-mode={spark_mode}: the executors are not what this mode promises:\n{problem}", returncode=1
        )
    first = reports[0]
    zip_path = first["pyspark_file"].split(".zip")[0] + ".zip"
    _SUMMARY.append(
        f"{spark_mode}: session, executors and probe job in {time.monotonic() - started:.1f} s; executors run "
        f"{first['executable']} (Python {first['version']}), sparkdist not importable, pyspark from {zip_path}"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _SUMMARY:
        terminalreporter.write_line(line)


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
