"""PEMA built-ins against Spark MLlib and Spark SQL, on the same Parquet data, in the same session.

- LinearRegression on 4,000,000 rows x 8 features against MLlib's
  LinearRegression(solver="normal") with VectorAssembler.
- Summary of the 8 features against Spark SQL's agg of count, mean, stddev, min, max.

    python benchmarks/bench_pema.py [--rows 4000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT, median_time

import sparkdist as sd
from sparkdist.pema import LinearRegression, Summary, pema_compute

FEATURES = [f"f{i}" for i in range(8)]


def make_data(path: Path, rows: int, files: int = 8) -> Path:
    marker = path / "_rows"
    if marker.exists() and marker.read_text() == str(rows):
        return path
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    beta = np.arange(1, 9) / 4.0
    per = rows // files
    for i in range(files):
        x = rng.normal(size=(per, 8))
        frame = pd.DataFrame(x, columns=FEATURES)
        frame["y"] = 3.0 + x @ beta + rng.normal(scale=0.5, size=per)
        frame.to_parquet(path / f"part-{i:03d}.parquet", row_group_size=125_000, index=False)
    marker.write_text(str(rows))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression as MLlibLR
    from pyspark.sql import functions as F

    path = make_data(ROOT / "benchmarks" / "data" / "linreg", args.rows)
    ctx = sd.SparkComputeContext(master="local[2]")
    spark = ctx.session
    df = spark.read.parquet(str(path))
    data = sd.ParquetData(path)

    def ours_lr():
        return pema_compute(LinearRegression("y", FEATURES), data, compute_context=ctx)

    def mllib_lr():
        assembled = VectorAssembler(inputCols=FEATURES, outputCol="features").transform(df)
        return MLlibLR(featuresCol="features", labelCol="y", solver="normal", regParam=0.0).fit(assembled)

    def ours_summary():
        return pema_compute(Summary(FEATURES), data, compute_context=ctx)

    def sql_summary():
        aggs = []
        for c in FEATURES:
            aggs += [F.count(c), F.mean(c), F.stddev(c), F.min(c), F.max(c)]
        return df.agg(*aggs).collect()

    ours_lr(), mllib_lr(), ours_summary(), sql_summary()  # warm up
    t_ours, fit = median_time(ours_lr, args.repeat)
    t_mllib, model = median_time(mllib_lr, args.repeat)
    t_sum, table = median_time(ours_summary, args.repeat)
    t_sql, sql_row = median_time(sql_summary, args.repeat)
    np.testing.assert_allclose(fit.coefficients.iloc[1:].to_numpy(), model.coefficients.toArray(), rtol=1e-6)
    sql_std = [sql_row[0][5 * i + 2] for i in range(len(FEATURES))]
    np.testing.assert_allclose(table["std"].to_numpy(), sql_std, rtol=1e-9)

    print(
        f"\n{args.rows:,} rows x 8 features, 8 Parquet files, Spark {spark.version} local[2], median of {args.repeat}"
    )
    print(f"{'variant':<58}{'seconds':>9}{'ratio':>9}")
    print(f"{'MLlib LinearRegression(solver=normal) + VectorAssembler':<58}{t_mllib:>9.3f}{1.0:>9.2f}")
    print(f"{'pema_compute(LinearRegression) on ParquetData':<58}{t_ours:>9.3f}{t_ours / t_mllib:>9.2f}")
    print(f"{'Spark SQL agg(count, mean, stddev, min, max) x 8':<58}{t_sql:>9.3f}{1.0:>9.2f}")
    print(f"{'pema_compute(Summary) on ParquetData':<58}{t_sum:>9.3f}{t_sum / t_sql:>9.2f}")
    longley_accuracy(ctx)
    ctx.stop()


LONGLEY_COEF = [-3482258.63459582, 15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
                -1.03322686717359, -0.511041056535807e-01, 1829.15146461355]  # fmt: skip


def longley_accuracy(ctx: sd.SparkComputeContext) -> None:
    """Correct significant digits (log relative error, worst coefficient) on NIST's Longley data."""
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression as MLlibLR
    from statsmodels.datasets import longley

    frame = longley.load_pandas().data
    xs = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]
    certified = np.array(LONGLEY_COEF)

    def digits(got: np.ndarray) -> float:
        return float(np.min(-np.log10(np.abs(got - certified) / np.abs(certified))))

    ours = pema_compute(
        LinearRegression("TOTEMP", xs), ctx.session.createDataFrame(frame).repartition(4), compute_context=ctx
    )
    assembled = VectorAssembler(inputCols=xs, outputCol="features").transform(ctx.session.createDataFrame(frame))
    model = MLlibLR(featuresCol="features", labelCol="TOTEMP", solver="normal", regParam=0.0).fit(assembled)
    mllib = np.concatenate([[model.intercept], model.coefficients.toArray()])
    print("\nNIST StRD Longley, correct significant digits of the worst coefficient")
    print(f"{'pema_compute(LinearRegression), 4 splits':<58}{digits(ours.coefficients.to_numpy()):>9.1f}")
    print(f"{'MLlib LinearRegression(solver=normal)':<58}{digits(mllib):>9.1f}")


if __name__ == "__main__":
    main()
