"""Real deployments: executors without sparkdist and with pyspark from zips, user errors that run
once, one result per executor, task slots read from the cluster, the user's session left as found."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkdist as sd
from sparkdist.pema import PemaAlgorithm, pema_compute

ROOT = Path(__file__).resolve().parent.parent

#: Executors (task-running JVMs) per mode: the local masters run tasks in the driver's JVM.
EXECUTORS = {"local": 1, "connect": 1, "cluster": 2, "standalone": 2, "connect-server": 2}


# -- results whose class or function comes from user code ------------------------------------------


@dataclasses.dataclass(frozen=True)
class Stats:
    n: int
    total: float

    def __add__(self, other: Stats) -> Stats:
        return Stats(self.n + other.n, self.total + other.total)


def split_stats(split: pd.DataFrame) -> Stats:
    return Stats(len(split), float(split["x"].sum()))


class PemaMean(PemaAlgorithm):
    """RevoPemaR's PemaMean, as in the README."""

    def __init__(self, column: str) -> None:
        self.column = column

    def initialize(self) -> None:
        self.total, self.valid = 0.0, 0

    def vars_to_use(self) -> list[str]:
        return [self.column]

    def process_data(self, chunk: pd.DataFrame) -> None:
        x = chunk[self.column].dropna()
        self.total += float(x.sum())
        self.valid += len(x)

    def update_results(self, other: PemaMean) -> None:
        self.total += other.total
        self.valid += other.valid

    def process_results(self) -> float:
        return self.total / self.valid


def test_results_of_user_classes_come_back(ctx, numbers):
    data = numbers[["x"]].fillna(0.0)
    per_split = sd.distribute_job(split_stats, data, compute_context=ctx)
    assert all(isinstance(s, Stats) for s in per_split)
    assert sd.distribute_job(split_stats, data, reduce=lambda a, b: a + b, compute_context=ctx) == Stats(
        len(data), pytest.approx(float(data["x"].sum()), rel=1e-12)
    )
    made = sd.exec_job(Stats, elem_args=[(1, 2.0), (3, 4.0)], compute_context=ctx)
    assert made == [Stats(1, 2.0), Stats(3, 4.0)]
    assert pema_compute(PemaMean("x"), numbers, compute_context=ctx) == pytest.approx(numbers["x"].mean(), rel=1e-12)


def test_pickling_on_an_executor_that_loads_pyspark_from_zips(tmp_path):
    """Real executors load pyspark and py4j from $SPARK_HOME/python/lib/*.zip, outside the Python's
    install folders: sparkdist must not mistake them for user code (it pickled pyspark by value)."""
    import pyspark

    from sparkdist.spark import package_zip

    lib = Path(pyspark.__file__).parent / "python" / "lib"
    zips = [shutil.copy(z, tmp_path) for z in sorted(lib.glob("*.zip"))]
    shipped = shutil.copy(package_zip(), tmp_path / "sparkdist.zip")
    user = tmp_path / "user"
    user.mkdir()
    (user / "mymodel.py").write_text("def predict(v):\n    return v + 1\n")
    script = textwrap.dedent(
        """
        import pickle, pyspark, mymodel, sparkdist._serde as s
        assert ".zip" in pyspark.__file__, pyspark.__file__
        print("USER:", sorted(m.__name__ for m in s._user_modules()))
        back = pickle.loads(s.dumps(lambda v: mymodel.predict(v) * 2))
        print("CALL:", back(20))
        print("RESULT:", pickle.loads(s.dumps_result({"f": mymodel.predict}))["f"](1))
        """
    )
    # -S: no site-packages, so pyspark can only come from the zips, as on an executor
    out = subprocess.run(
        [sys.executable, "-S", "-c", script],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, zips), str(shipped), str(user)])},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "USER: ['mymodel']" in out.stdout, out.stdout
    assert "CALL: 42" in out.stdout and "RESULT: 2" in out.stdout, out.stdout


# -- continue_on_failure=False: a user error runs once and ends the job ----------------------------


def append_and_fail(i: int, log: str) -> int:
    with open(log, "a") as fh:
        fh.write(f"{i}\n")
    if i == 0:
        raise ValueError("call 0 always fails")
    time.sleep(0.5)
    return i


def test_failing_call_runs_once_and_ends_the_job(spark_ctx, tmp_path):
    log = tmp_path / "calls.log"
    with pytest.raises(sd.JobError, match="call 0 always fails") as info:
        sd.exec_job(
            append_and_fail,
            str(log),
            elem_args=list(range(40)),
            task_chunk_size=1,
            continue_on_failure=False,
            compute_context=spark_ctx,
        )
    assert info.value.remote_type == "ValueError" and info.value.split == 0
    ran = [int(line) for line in log.read_text().split()]
    assert ran.count(0) == 1, f"the failing call ran {ran.count(0)} times"  # never retried
    assert len(ran) < 40, "the job went on after its first failure"


def test_only_failing_call_runs_once_on_a_cluster(spark_ctx, tmp_path):
    log = tmp_path / "calls.log"
    with pytest.raises(sd.JobError, match="call 0 always fails"):
        sd.exec_job(append_and_fail, str(log), elem_args=[0], continue_on_failure=False, compute_context=spark_ctx)
    assert log.read_text().split() == ["0"]


# -- once_per_executor: one result per executor, keyed by a real executor id -----------------------


def whoami() -> int:
    return os.getpid()


def test_once_per_executor_gives_one_result_per_executor(spark_ctx, spark_mode):
    got = sd.exec_job(whoami, once_per_executor=True, compute_context=spark_ctx)
    assert len(got) == EXECUTORS[spark_mode], got
    assert len(set(got)) == len(got)
    if spark_mode in ("cluster", "standalone", "connect-server"):
        assert sorted(key.rsplit("/", 1)[1] for key in got) == ["0", "1"], got  # Spark's own executor ids


# -- parallelism from the cluster -------------------------------------------------------------------


def test_task_slots_come_from_the_cluster(spark_ctx, spark):
    assert spark_ctx.task_slots == 2  # every mode has 2 cores for tasks (local[2], 2 executors x 1 core)
    assert sd.SparkComputeContext(spark, task_slots=7).task_slots == 7


@pytest.mark.modes("standalone", "connect-server")
@pytest.mark.slow
def test_task_slots_follow_executors_that_join(spark, cluster):
    worker = cluster.add_worker()
    try:
        deadline = time.monotonic() + 120
        slots = 0
        while time.monotonic() < deadline:
            slots = sd.SparkComputeContext(spark).task_slots  # a new context probes anew under Connect
            if slots == 3:
                break
            time.sleep(1)
        assert slots == 3
        # and work spreads over the third executor
        got = sd.exec_job(whoami, once_per_executor=True, compute_context=sd.SparkComputeContext(spark))
        assert len(got) == 3, got
    finally:
        cluster.stop_worker(worker)


def test_task_slots_must_be_a_positive_int():
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises((sd.InvalidArgumentError, sd.ArgumentTypeError), match="task_slots must be a positive int"):
            sd.SparkComputeContext(master="local[1]", task_slots=bad)


# -- shipping to executors that run another venv -----------------------------------------------------


def venv_without_sparkdist(folder: Path) -> Path:
    """A venv built on our base interpreter (its python is a symlink to the same binary) that sees our
    libraries (pyarrow, pandas, pyspark) through a .pth file, but not sparkdist (the .pth files of a
    folder listed in a .pth file are not run, so sparkdist's editable install is not seen)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "pyarrow").exists())
    Path(site, "ours.pth").write_text(ours + "\n")
    probe = subprocess.run([str(python), "-c", "import pyarrow, pandas, pyspark; import sparkdist"], cwd=folder)
    assert probe.returncode != 0, f"{python} can import sparkdist"
    return python


@pytest.mark.modes("local")
@pytest.mark.slow
def test_executors_in_another_venv_on_the_same_base_get_sparkdist_shipped(tmp_path):
    python = venv_without_sparkdist(tmp_path / "executors")
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import sparkdist as sd
            from pyspark.sql import SparkSession
            spark = SparkSession.builder.master("local[1]").getOrCreate()
            ctx = sd.SparkComputeContext(spark)
            print("GOT:", sd.distribute_job(len, spark.range(6), reduce=lambda a, b: a + b, compute_context=ctx))
            spark.stop()
            """
        )
    )
    env = {**os.environ, "PYSPARK_PYTHON": str(python), "SPARK_CONF_DIR": str(ROOT / "conf")}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert "GOT: 6" in out.stdout, out.stdout + out.stderr[-3000:]


# -- the user's session and machine left as found ---------------------------------------------------


def test_session_settings_are_left_as_found(spark, spark_ctx, spark_mode):
    connect = spark_mode in ("connect", "connect-server")
    if connect:
        before = set(spark.getTags())
    else:
        sc = spark.sparkContext
        sc.setJobDescription("the user's own description")
        before = set(sc.getJobTags())
    sd.distribute_job(len, spark.range(10, numPartitions=2), reduce=lambda a, b: a + b, compute_context=spark_ctx)
    sd.exec_job(len, elem_args=[[1], [2, 3]], compute_context=spark_ctx)
    if connect:
        assert set(spark.getTags()) == before
        return
    try:
        assert sc.getLocalProperty("spark.job.description") == "the user's own description"
        assert sc.getLocalProperty("spark.job.interruptOnCancel") is None
        assert set(sc.getJobTags()) == before
    finally:
        sc.setJobDescription(None)  # type: ignore[arg-type]


def test_no_temporary_folder_is_left_after_exit(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from sparkdist.spark import package_zip; print(package_zip())"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    zip_path = Path(out.stdout.strip())
    assert out.returncode == 0 and zip_path.name.endswith(".zip"), out.stderr
    assert not zip_path.parent.exists(), f"{zip_path.parent} was left behind"


def test_unreachable_connect_server_is_a_clear_error():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"sc://127.0.0.1:{port}"
    ctx = sd.SparkComputeContext(remote=url)
    start = time.monotonic()
    with pytest.raises(sd.ComputeContextError, match=f"cannot reach the Spark Connect server at {url}"):
        sd.exec_job(len, elem_args=[[1]], compute_context=ctx)
    assert time.monotonic() - start < 30  # pyspark alone retries for minutes


@pytest.mark.slow
def test_spark_submit_with_the_wheel_on_py_files(tmp_path):
    """The README's spark-submit recipe: neither the driver's nor the executors' Python has sparkdist;
    it comes from the wheel given to --py-files, and reaches the executors from there."""
    wheels = tmp_path / "wheels"
    left_before = (ROOT / "build").exists()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
        cwd=tmp_path,
    )
    if not left_before:  # setuptools builds in ./build of the source tree: leave the checkout as found
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    wheel = next(wheels.glob("sparkdist-*.whl"))
    python = venv_without_sparkdist(tmp_path / "venv")
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"x": np.arange(1000.0)}).to_parquet(data / "part-0.parquet", row_group_size=100)
    env = {
        **os.environ,
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_DRIVER_PYTHON": str(python),
        "SPARK_CONF_DIR": str(ROOT / "conf"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    cmd = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", "local-cluster[1,1,1024]",
        "--conf", "spark.executor.memory=768m",
        "--py-files", str(wheel),
        str(ROOT / "examples" / "spark_submit_job.py"),
        str(data),
    ]  # fmt: skip
    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "RESULT rows=1000 sum=499500.0 distributed=True" in out.stdout, out.stdout + out.stderr[-3000:]
    assert f"sparkdist imported from {wheel}" in out.stdout, out.stdout
