"""The error tree: one root, builtin bases, clean pickling."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pandas as pd
import pytest

import sparkdist as sd
from sparkdist import errors

BUILTIN_OF = {
    errors.InvalidArgumentError: ValueError,
    errors.ArgumentTypeError: TypeError,
    errors.NotPicklableError: TypeError,
    errors.ComputeContextError: ValueError,
    errors.SessionStoppedError: RuntimeError,
    errors.DataSourceError: ValueError,
    errors.DataNotFoundError: FileNotFoundError,
    errors.SchemaConflictError: ValueError,
    errors.ColumnNotFoundError: KeyError,
    errors.EmptyDataError: ValueError,
    errors.JobError: RuntimeError,
    errors.DependencyError: ImportError,
    errors.ServerUnreachableError: ConnectionError,
    errors.PackageError: RuntimeError,
    errors.MissingPackageError: ModuleNotFoundError,
}


@pytest.mark.parametrize(("cls", "builtin"), list(BUILTIN_OF.items()), ids=lambda c: c.__name__)
def test_every_error_is_a_sparkdist_error_and_its_builtin(cls, builtin):
    err = cls("message")
    assert isinstance(err, sd.SparkDistError) and isinstance(err, builtin)
    assert str(err) == "message"  # KeyError subclasses too: no repr() quotes
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and str(again) == "message"


def test_all_errors_are_exported():
    for name in errors.__all__:
        assert getattr(sd, name) is getattr(errors, name)


def test_job_error_keeps_remote_details_through_pickling():
    err = sd.JobError(
        "f failed", remote_type="KeyError", remote_message="'a'", remote_traceback="Traceback ...", split=3
    )
    again = pickle.loads(pickle.dumps(err))
    assert (again.remote_type, again.remote_message, again.remote_traceback, again.split) == (
        "KeyError",
        "'a'",
        "Traceback ...",
        3,
    )


def lock_result(_split_or_call=None):
    import threading

    return threading.Lock()


def test_a_result_that_cannot_be_pickled_names_the_function(ctx):
    if not ctx.ships_work:
        pytest.skip("in-process results are never pickled")
    frame = pd.DataFrame({"k": range(10)})
    with pytest.raises(
        sd.JobError,
        match=r"'lock_result' failed on split \d+ with TypeError: the result of lock_result cannot be pickled",
    ):
        sd.distribute_job(lock_result, frame, compute_context=ctx)
    with pytest.warns(RuntimeWarning, match="2 of 2 calls"):
        got = sd.exec_job(lock_result, elem_args=[1, 2], compute_context=ctx)
    assert all(isinstance(g, sd.TaskError) and "the result of lock_result cannot be pickled" in str(g) for g in got)
    assert sd.distribute_job(len, frame, reduce=lambda a, b: a + b, compute_context=ctx) == 10


def test_a_dataframe_of_a_stopped_session_is_named(tmp_path):
    # a classic session of its own, in a child process (this process keeps no JVM)
    script = tmp_path / "stopped.py"
    script.write_text(
        "import sparkdist as sd\n"
        "from pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.master('local[1]').config('spark.driver.host', '127.0.0.1')"
        ".config('spark.ui.enabled', 'false').getOrCreate()\n"
        "df = s.range(5)\n"
        "s.stop()\n"
        "try:\n"
        "    sd.distribute_job(len, df, compute_context=sd.LocalComputeContext())\n"
        "except sd.DataSourceError as err:\n"
        "    print('ERROR', err)\n"
    )
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert "ERROR the Spark DataFrame passed as data belongs to a SparkSession that has been stopped" in out.stdout, (
        out.stdout + out.stderr[-2000:]
    )


def test_spark_connect_headlines_keep_the_cause():
    from sparkdist.spark.failures import spark_failure

    connect_text = (
        "\n  An exception was thrown from the Python worker. Please see the stack trace below.\n"
        "[PYTHON_EXCEPTION] An exception was thrown from the Python worker: Traceback (most recent call last):\n"
        '  File "/x.py", line 12, in g\n    raise ValueError("boom in g")\nValueError: boom in g\n SQLSTATE: 38000'
    )
    err = spark_failure(RuntimeError(connect_text))
    assert str(err).startswith("the Spark job failed: ValueError: boom in g")
    assert (err.remote_type, err.remote_message) == ("ValueError", "boom in g")
    died = spark_failure(
        RuntimeError(
            "Job aborted due to stage failure: Task 1 in stage 3.0 failed 4 times, most recent failure: Lost task "
            "1.3 in stage 3.0 (TID 12) (10.1.2.3 executor 2): org.apache.spark.SparkException: Python worker "
            "exited unexpectedly (crashed). Consider setting 'spark.python.worker.faulthandler.enabled'"
        ),
        unit=lambda p: f"call {p} of 'fit'",
    )
    assert isinstance(died, sd.WorkerDiedError)
    assert str(died).startswith("the Python worker running call 1 of 'fit' died on 10.1.2.3 (executor 2)")
