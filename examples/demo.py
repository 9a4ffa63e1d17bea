"""The sparkdist demo (the README's first command runs this).

Starts an embedded local Spark, writes a small Parquet data set, and computes the mean and
standard deviation of a column with ``distribute_job`` and a reduce: once on Spark's executors
and once in the local (in-process) context. Both answers are printed; they agree.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import sparkdist as sd


def write_data(directory: Path, files: int = 8, rows: int = 250_000) -> Path:
    """Parquet files of (id, x, y) rows, in hive-style year=... folders."""
    rng = np.random.default_rng(42)
    for i in range(files):
        part = directory / f"year={2020 + i % 4}"
        part.mkdir(parents=True, exist_ok=True)
        x = rng.normal(50.0, 10.0, rows)
        frame = pd.DataFrame({"id": np.arange(i * rows, (i + 1) * rows), "x": x, "y": 3.0 * x + rng.normal(0, 1, rows)})
        frame.to_parquet(part / f"part-{i:03d}.parquet", row_group_size=50_000, index=False)
    return directory


def moments(split: pd.DataFrame) -> np.ndarray:
    """Count, mean and sum of squared deviations of x in one split (combined with Chan's formula)."""
    x = split["x"].to_numpy()
    mean = x.mean()
    return np.array([len(x), mean, ((x - mean) ** 2).sum()])


def combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Merge two (n, mean, M2) summaries; exact whatever the split of the data."""
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return np.array([n, a[1] + delta * b[0] / n, a[2] + b[2] + delta**2 * a[0] * b[0] / n])


def describe(result: np.ndarray) -> str:
    n, mean, m2 = result
    return f"n={int(n):,}  mean(x)={mean:.10f}  sd(x)={np.sqrt(m2 / (n - 1)):.10f}"


def main() -> None:
    os.environ.setdefault("SPARK_CONF_DIR", str(Path(__file__).resolve().parent.parent / "conf"))
    with tempfile.TemporaryDirectory(prefix="sparkdist-demo-") as tmp:
        data = sd.ParquetData(write_data(Path(tmp) / "measurements"), columns=["x"])

        spark = sd.SparkComputeContext(master="local[2]", app_name="sparkdist-demo")
        try:
            with spark:
                print("is_distributed_context():", sd.is_distributed_context())
                print("is_distributed_context(data=...):", sd.is_distributed_context(data=data))
                print(data.validate())
                start = time.perf_counter()
                on_spark = sd.distribute_job(moments, data, reduce=combine)
                print(f"Spark executors  : {describe(on_spark)}   ({time.perf_counter() - start:.2f} s)")
        finally:
            spark.stop()

        start = time.perf_counter()
        local = sd.distribute_job(moments, data, reduce=combine, compute_context=sd.LocalComputeContext())
        print(f"local, in-process: {describe(local)}   ({time.perf_counter() - start:.2f} s)")
        if not np.allclose(on_spark, local, rtol=1e-12):
            sys.exit("the two answers differ")
        print("The two answers agree.")


if __name__ == "__main__":
    main()
