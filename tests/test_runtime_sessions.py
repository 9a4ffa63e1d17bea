"""Sessions the way PySpark users select them: ``SparkComputeContext()`` and the automatic default context
honour the active session (classic, Connect, a databricks-connect ``DatabricksSession``), ``SPARK_REMOTE``
and ``spark.remote`` in spark-defaults.conf; errors about the environment are also the builtin they resemble."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sparkdist as sd
from sparkdist import _compat, _current
from sparkdist.spark import session as session_mod

ROOT = Path(__file__).resolve().parent.parent


def _closed_port_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"sc://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def no_selection(monkeypatch, tmp_path):
    """No SPARK_REMOTE, an empty SPARK_CONF_DIR, and no automatic context left from a test before."""
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.delenv("MASTER", raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    monkeypatch.setattr(_current, "_remote_contexts", {})
    return tmp_path


@pytest.fixture
def connect_client():
    pytest.importorskip("grpc", reason="Spark Connect needs pyspark's Connect dependencies (grpcio)")


def test_spark_remote_selects_spark_connect_and_an_unreachable_one_is_a_connection_error(
    no_selection, connect_client, monkeypatch
):
    url = _closed_port_url()
    monkeypatch.setenv("SPARK_REMOTE", url)
    ctx = sd.SparkComputeContext()
    assert ctx.is_connect and url in repr(ctx)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot reach the Spark Connect server at {url}") as err:
        sd.exec_job(len, elem_args=[[1]], compute_context=ctx)
    assert time.monotonic() - start < 10
    assert isinstance(err.value, sd.ServerUnreachableError) and isinstance(err.value, sd.ComputeContextError)


def test_the_automatic_default_follows_spark_remote(no_selection, connect_client, monkeypatch):
    assert isinstance(sd.get_compute_context(), sd.LocalComputeContext)
    url = _closed_port_url()
    monkeypatch.setenv("SPARK_REMOTE", url)
    ctx = sd.get_compute_context()
    assert isinstance(ctx, sd.SparkComputeContext) and ctx.is_connect
    assert sd.get_compute_context() is ctx  # one context per URL, not one per call
    assert sd.is_distributed_context()
    with pytest.raises(sd.ServerUnreachableError, match=url):
        sd.exec_job(len, elem_args=[[1, 2, 3]])
    monkeypatch.delenv("SPARK_REMOTE")
    assert isinstance(sd.get_compute_context(), sd.LocalComputeContext)


def test_spark_remote_in_spark_defaults_and_the_environment_first(no_selection, connect_client, monkeypatch):
    (no_selection / "spark-defaults.conf").write_text(
        "# as a cluster's admin writes it\nspark.remote    sc://spark.example.com:15002\nspark.ui.enabled false\n"
    )
    assert session_mod.configured_remote() == "sc://spark.example.com:15002"
    ctx = sd.SparkComputeContext()
    assert ctx.is_connect and "sc://spark.example.com:15002" in repr(ctx)
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15999")
    assert "sc://127.0.0.1:15999" in repr(sd.SparkComputeContext())
    assert sd.SparkComputeContext(app_name="other").is_connect


def test_classic_spark_takes_the_configured_master(no_selection):
    (no_selection / "spark-defaults.conf").write_text("spark.master=local[3]\n")
    assert session_mod.configured_master() == "local[3]"
    ctx = sd.SparkComputeContext()
    assert not ctx.is_connect and ctx.wrapped_session is None


def test_a_master_while_spark_remote_selects_connect_is_a_clear_error(no_selection, monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15002")
    with pytest.raises(sd.ComputeContextError, match=r"master='local\[2\]' .* SPARK_REMOTE='sc://127.0.0.1:15002'"):
        sd.SparkComputeContext(master="local[2]")
    assert sd.SparkComputeContext(remote="sc://127.0.0.1:15003").is_connect  # an explicit remote is fine


def test_missing_pyspark_is_an_import_error_saying_what_to_install(no_selection, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'sparkdist\[spark\]'") as err:
        sd.SparkComputeContext(master="local[2]")
    assert isinstance(err.value, sd.DependencyError) and isinstance(err.value, sd.ComputeContextError)


def test_connect_sessions_are_connect_whoever_made_them():
    connect = pytest.importorskip("pyspark.sql.connect.session", reason="needs pyspark's Connect client")
    from pyspark.sql import SparkSession as ClassicSession

    class DatabricksLike(connect.SparkSession):  # databricks-connect's session is pyspark's Connect session
        pass

    class Wrapped:  # a Connect session by its methods, whatever its class
        client = addArtifacts = createDataFrame = range = interruptTag = None

    class MyClassic(ClassicSession):
        pass

    for obj in (object.__new__(DatabricksLike), Wrapped()):
        assert _compat.is_spark_session(obj) and _compat.is_connect(obj)
    classic = object.__new__(MyClassic)
    assert _compat.is_spark_session(classic) and not _compat.is_connect(classic)
    assert not _compat.is_spark_session(object()) and not _compat.is_connect(object())


def test_no_arguments_wrap_the_active_session(spark):
    ctx = sd.SparkComputeContext()
    assert ctx.wrapped_session is spark and ctx.is_connect == _compat.is_connect(spark)
    assert sd.exec_job(len, elem_args=[[1, 2], [3]], compute_context=ctx) == [2, 1]
    ctx.stop()  # not its session: stays up
    assert not _compat.is_stopped(spark)


_CHILD = """
import json, sparkdist as sd
ctx = sd.SparkComputeContext()
info = sd.executor_info()          # the automatic default context: SPARK_REMOTE's
print(json.dumps({"connect": ctx.is_connect, "default_connect": sd.get_compute_context().is_connect,
                  "pythons": sorted(set(info["python_executable"])), "calls": sd.exec_job(len, elem_args=[[1, 2]])}))
"""


@pytest.mark.slow
def test_spark_remote_selects_the_connect_server_with_no_arguments(connect_url, cluster):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYSPARK_", "SPARK_CONNECT_MODE", "SPARK_LOCAL_REMOTE"))
    }
    env["SPARK_REMOTE"] = connect_url
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["connect"] and seen["default_connect"] and seen["calls"] == [2]
    assert seen["pythons"] == [str(cluster.executor_python)]  # the server's executors, not a local Spark
