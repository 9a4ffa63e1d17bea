"""Smoke test of an *installed* sparkdist, for the venvs of tests/test_install.py and the floor lanes.

    python tests/smoke.py local                     # Local + LocalParallel contexts (no pyspark needed)
    python tests/smoke.py classic                   # SparkComputeContext(master="local[2]")
    python tests/smoke.py connect                   # SparkComputeContext(remote="local[2]")
    python tests/smoke.py connect --remote sc://127.0.0.1:15002

Each context runs distribute_job with a reduce on Parquet and on a DataFrame (pandas for the local
contexts, Spark for the others), exec_job, pema_compute and a wait=False job, and every answer is
checked against numpy's. Where pyspark (``local`` mode) or its Connect dependencies (``classic``
mode) are not installed, it also checks that a context needing them fails with sparkdist's
ComputeContextError naming what to install. Run it from outside the
source tree so that ``import sparkdist`` finds the installed copy; it prints where that copy lives,
the versions in use and ``SMOKE OK`` at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def moments(split: pd.DataFrame) -> np.ndarray:
    """Count, sum and sum of squares of x in one split."""
    x = split["x"].to_numpy()
    return np.array([len(x), x.sum(), (x * x).sum()])


def square(i: int) -> int:
    return i * i


def make_data(directory: Path) -> pd.DataFrame:
    """3 Parquet files of 4 row groups each in ``directory``; returns the whole table."""
    rng = np.random.default_rng(11)
    frames = []
    for i in range(3):
        x = rng.normal(5.0, 2.0, 2_000)
        frame = pd.DataFrame({"x": x, "y": 1.5 + 2.0 * x + rng.normal(0.0, 0.1, len(x))})
        frame.to_parquet(directory / f"part-{i}.parquet", row_group_size=500, index=False)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def check_context(ctx: Any, data_dir: Path, frame: Any, table: pd.DataFrame) -> None:
    """Run every kind of job in ``ctx`` and compare with numpy's answers."""
    import sparkdist as sd
    from sparkdist.pema import LinearRegression, pema_compute

    x = table["x"].to_numpy()
    expected = np.array([len(x), x.sum(), (x * x).sum()])
    started = time.monotonic()
    got = sd.distribute_job(moments, str(data_dir), reduce=np.add, compute_context=ctx)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    got = sd.distribute_job(moments, frame, reduce=np.add, compute_context=ctx)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert sd.exec_job(square, elem_args=list(range(12)), compute_context=ctx) == [i * i for i in range(12)]
    fit = pema_compute(LinearRegression("y", ["x"]), str(data_dir), compute_context=ctx)
    design = np.column_stack([np.ones(len(x)), x])
    np.testing.assert_allclose(fit.coefficients, np.linalg.lstsq(design, table["y"].to_numpy(), rcond=None)[0])
    assert fit.n == len(x)
    job = sd.distribute_job(moments, str(data_dir), reduce=np.add, compute_context=ctx, wait=False)
    np.testing.assert_allclose(job.result(timeout=600), expected, rtol=1e-12)
    assert job.status == "finished", job.status
    print(f"  {ctx!r}: distribute_job (Parquet, DataFrame), exec_job, pema_compute, wait=False ok "
          f"in {time.monotonic() - started:.1f}s")  # fmt: skip


def check_missing_pyspark() -> None:
    """Without pyspark, a Spark context says what to install."""
    import sparkdist as sd

    for kwargs in ({"master": "local[2]"}, {"remote": "sc://127.0.0.1:15002"}):
        try:
            sd.SparkComputeContext(**kwargs)
        except sd.ComputeContextError as err:
            assert "pip install 'sparkdist[spark]'" in str(err) and "'sparkdist[connect]'" in str(err), err
        else:
            raise AssertionError(f"SparkComputeContext({kwargs}) without pyspark did not raise")
    print("  SparkComputeContext without pyspark: ComputeContextError naming sparkdist[spark] / [connect]")


def check_missing_connect_deps() -> None:
    """With pyspark but not its Connect dependencies (the spark extra), Spark Connect says what to install."""
    import sparkdist as sd

    try:
        sd.SparkComputeContext(remote="local[2]")
    except sd.ComputeContextError as err:
        assert "pip install 'sparkdist[connect]'" in str(err), err
    else:
        raise AssertionError("SparkComputeContext(remote=...) without grpcio did not raise")
    print("  SparkComputeContext(remote=...) without grpcio: ComputeContextError naming sparkdist[connect]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["local", "classic", "connect"])
    parser.add_argument("--remote", default="local[2]", help="Spark Connect URL for mode connect")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.mode == "connect" and not args.remote.startswith("sc://"):
        # the local Connect server behind remote("local[...]") binds port 15002, which another Spark
        # Connect run on this machine may hold; Spark's testing switch gives it a free port instead
        os.environ.setdefault("SPARK_TESTING", "1")

    import sparkdist as sd

    has_pyspark = importlib.util.find_spec("pyspark") is not None
    versions = {"python": sys.version.split()[0], "sparkdist": sd.__file__}
    for name in ("pyspark", "pandas", "numpy", "pyarrow", "cloudpickle"):
        if importlib.util.find_spec(name) is not None:
            versions[name] = getattr(__import__(name), "__version__", "?")
    print("smoke:", args.mode, " ".join(f"{k}={v}" for k, v in versions.items()))

    with tempfile.TemporaryDirectory(prefix="sparkdist-smoke-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        table = make_data(data_dir)
        if args.mode == "local":
            check_context(sd.LocalComputeContext(), data_dir, table, table)
            pool = sd.LocalParallelComputeContext(2)
            try:
                check_context(pool, data_dir, table, table)
            finally:
                pool.close()
            if not has_pyspark:
                check_missing_pyspark()
        else:
            kwargs = {"remote": args.remote} if args.mode == "connect" else {"master": "local[2]"}
            ctx = sd.SparkComputeContext(**kwargs, app_name="sparkdist-smoke")
            try:
                assert ctx.is_connect == (args.mode == "connect")
                frame = ctx.session.read.parquet(str(data_dir)).repartition(3)
                check_context(ctx, data_dir, frame, table)
            finally:
                ctx.stop()
            if args.mode == "classic" and importlib.util.find_spec("grpc") is None:
                check_missing_connect_deps()
    print("SMOKE OK")


if __name__ == "__main__":
    main()
