"""executor_info and ping_executors (rxGetNodeInfo, rxPingNodes), and the environment hint in the
errors of jobs that fail for a module the executors lack: in every context, against real workers."""

from __future__ import annotations

import math
import os
import platform
import tempfile
import time
import warnings

import chispa  # installed with the driver only: the executors of the server modes lack it
import pytest

import sparkdist as sd
from sparkdist import nodes


def _expected_executors(ctx, spark_mode):
    """How many executors (worker processes) each mode's context has."""
    if isinstance(ctx, sd.LocalParallelComputeContext):
        return ctx.n_workers
    return 2 if spark_mode in ("cluster", "standalone", "connect-server") else 1


def test_executor_info_one_row_per_executor_with_the_drivers_versions(ctx, spark_mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.VersionMismatchWarning)  # same versions everywhere: no warning
        info = sd.executor_info(ctx)
    assert tuple(info.columns) == nodes.INFO_COLUMNS
    assert len(info) == _expected_executors(ctx, spark_mode) == info["pid"].nunique()
    import numpy
    import pandas
    import pyarrow

    driver = {"python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__,
              "pyarrow": pyarrow.__version__, "sparkdist": sd.__version__}  # fmt: skip
    for name, version in driver.items():
        assert (info[name] == version).all(), (name, info[name].tolist())
    if isinstance(ctx, sd.LocalComputeContext):
        assert info.loc[0, "executor"] == "local" and info.loc[0, "pid"] == os.getpid()
    elif isinstance(ctx, sd.LocalParallelComputeContext):
        assert set(info["executor"]) == {f"worker-{pid}" for pid in info["pid"]}
        assert os.getpid() not in set(info["pid"])
    else:
        import pyspark

        assert (info["pyspark"] == pyspark.__version__).all()
        if spark_mode in ("local", "connect"):  # local[2]: the driver's JVM runs the tasks
            assert info["executor"].tolist() == ["driver"] and info["cores"].tolist() == [2]
        else:  # 2 executors of 1 core, 768m
            assert info["executor"].str.isdigit().all() and info["executor"].nunique() == 2
            assert info["cores"].tolist() == [1, 1] and info["memory"].tolist() == ["768m", "768m"]
        if spark_mode in ("standalone", "connect-server"):  # executors: their own venv
            for shipped in info["shipped"]:  # neither is installed there: Spark's zip, sparkdist's own
                assert {"pyspark", "sparkdist"} <= set(shipped.split(", ")), shipped
            assert info["python_executable"].str.contains(".venv-executors", regex=False).all()


def test_ping_executors_every_executor_answers(ctx, spark_mode):
    started = time.monotonic()
    ping = sd.ping_executors(ctx, timeout=60)
    assert tuple(ping.columns) == nodes.PING_COLUMNS
    assert ping["ok"].all() and ping["error"].isna().all(), ping.to_dict("records")
    assert len(ping) == _expected_executors(ctx, spark_mode)
    assert ((ping["seconds"] >= 0) & (ping["seconds"] <= time.monotonic() - started + 1)).all()


def _busy(i, folder):
    """Holds a task slot until the test releases it (a killed task may outlive its cancel)."""
    open(os.path.join(folder, f"started-{i}"), "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(folder, "release")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return i


def test_ping_timeout_cancels_and_reports(ctx, no_spark_job_running):
    if isinstance(ctx, sd.LocalComputeContext):
        pytest.skip("the in-process context runs the ping in this process: it always answers")
    slots = ctx.task_slots
    with tempfile.TemporaryDirectory() as folder:
        busy = sd.exec_job(_busy, folder, elem_args=list(range(slots)), compute_context=ctx, wait=False)
        deadline = time.monotonic() + 60
        while len(os.listdir(folder)) < slots and time.monotonic() < deadline:  # every slot taken
            time.sleep(0.02)
        started = time.monotonic()
        ping = sd.ping_executors(ctx, timeout=0.5)
        took = time.monotonic() - started
        open(os.path.join(folder, "release"), "w").close()
        assert busy.result(timeout=60) == list(range(slots))  # other work is not touched by the cancel
    assert took < 8, took
    assert not ping["ok"].any() and ping["error"].str.contains(r"no answer within 0\.5 s").all(), ping
    no_spark_job_running(ctx)


@pytest.mark.parametrize("bad", [0, -1.5, math.nan, math.inf, "30", True, None])
def test_ping_timeout_must_be_a_positive_number(bad):
    error = sd.ArgumentTypeError if isinstance(bad, (str, bool)) or bad is None else sd.InvalidArgumentError
    with pytest.raises(error, match=r"^timeout must be a positive(, finite)? number of seconds, got ") as caught:
        sd.ping_executors(sd.LocalComputeContext(), timeout=bad)
    assert str(caught.value).endswith(repr(bad))


def test_a_version_that_differs_from_the_drivers_warns():
    driver = nodes._worker.environment()
    rows = [dict(driver, executor="1", numpy="1.26.4", python="3.9.18"), dict(driver, executor="2")]
    with pytest.warns(sd.VersionMismatchWarning) as caught:
        nodes.warn_mismatches(rows, dict(driver, numpy="2.1.0"))
    text = str(caught[0].message)
    assert f"Python 3.9.18 (driver: {driver['python']})" in text and "numpy 1.26.4 (driver: 2.1.0)" in text
    assert f"{driver['host']}/1" in text and f"{driver['host']}/2" not in text.split("numpy")[1]


def _imports_a_missing_module():
    import sparkdist_no_such_module  # noqa: F401

    return 1


def test_a_missing_module_on_the_executors_is_named_with_a_pointer_to_executor_info(ctx):
    with pytest.raises(
        sd.JobError, match=r"(?s)module 'sparkdist_no_such_module' cannot be imported.*executor_info\(\)"
    ):
        sd.exec_job(_imports_a_missing_module, compute_context=ctx, continue_on_failure=False)
    with pytest.warns(RuntimeWarning, match="1 of 1 calls"):
        [slot] = sd.exec_job(_imports_a_missing_module, compute_context=ctx)
    assert isinstance(slot, sd.TaskError) and "sparkdist.executor_info()" in str(slot)


def _uses_chispa():
    return chispa.__name__


@pytest.mark.modes("standalone", "connect-server")
def test_a_module_only_the_driver_has_fails_the_job_with_the_hint(spark_ctx):
    # the function travels by value; chispa, a global of it, is imported by name when it is unpickled
    with pytest.raises(sd.JobError, match=r"(?s)No module named 'chispa'.*module 'chispa' cannot be imported"):
        sd.exec_job(_uses_chispa, compute_context=spark_ctx)
