"""A sparkdist job for spark-submit.

    spark-submit --master 'local-cluster[2,1,1024]' --properties-file conf/spark-defaults.conf \
        examples/spark_submit_job.py /path/to/parquet

spark-submit creates the SparkSession; sparkdist's default compute context wraps it. On a cluster,
pass sparkdist as a wheel (``pip wheel --no-deps .``) with ``--py-files sparkdist-*.whl``.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

import sparkdist as sd


def count_and_sum(split: pd.DataFrame) -> np.ndarray:
    return np.array([len(split), split["x"].sum()])


def main(path: str) -> None:
    spark = SparkSession.builder.appName("sparkdist-spark-submit").getOrCreate()
    ctx = sd.get_compute_context()
    assert isinstance(ctx, sd.SparkComputeContext) and ctx.session is spark
    n, total = sd.distribute_job(count_and_sum, path, reduce=lambda a, b: a + b)
    print(f"RESULT rows={int(n)} sum={float(total)!r} distributed={sd.is_distributed_context(data=path)}")
    print(f"sparkdist imported from {sd.__file__}")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
