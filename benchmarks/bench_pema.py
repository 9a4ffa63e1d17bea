"""PEMA built-ins against Spark MLlib and Spark SQL, on the same Parquet data, in the same session.

- LinearRegression on 4,000,000 rows x 8 features against MLlib's
  LinearRegression(solver="normal") with VectorAssembler.
- Summary of the 8 features against Spark SQL's agg of count, mean, stddev, min, max.
- KMeans (k = 8, 20 passes, tol 0) against MLlib's KMeans(initMode="random"), both from the
  centers MLlib's random init picks (found by a fit with maxIter=0 before timing).
- LogisticRegression against MLlib's LogisticRegression(regParam=0, standardization=False), both to
  a relative change of the loss below 1e-10; and against statsmodels' Logit on a 100,000-row sample.

Runs of ours and MLlib's alternate (the machine is shared: noise hits both alike).

    python benchmarks/bench_pema.py [--rows 4000000] [--repeat 3] [--only linear|iterative]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import ROOT, median_time

import sparkdist as sd
from sparkdist.pema import KMeans, LinearRegression, LogisticRegression, Summary, pema_compute

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
    ap.add_argument("--only", choices=["linear", "iterative"], default=None)
    args = ap.parse_args()
    ctx = sd.SparkComputeContext(master="local[2]")
    if args.only != "iterative":
        linear(ctx, args)
    if args.only != "linear":
        iterative(ctx, args)
    ctx.stop()


def linear(ctx: sd.SparkComputeContext, args: argparse.Namespace) -> None:

    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression as MLlibLR
    from pyspark.sql import functions as F

    path = make_data(ROOT / "benchmarks" / "data" / "linreg", args.rows)
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


def make_iterative_data(path: Path, rows: int, files: int = 8) -> Path:
    """8 features from 8 Gaussian clusters, and a 0/1 response drawn from a logistic model."""
    marker = path / "_rows"
    if marker.exists() and marker.read_text() == str(rows):
        return path
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    means = rng.normal(scale=3.0, size=(8, 8))
    beta = np.array([0.5, -0.25, 0.3, 0.1, -0.4, 0.2, 0.05, -0.15])
    per = rows // files
    for i in range(files):
        x = means[rng.integers(0, 8, per)] + rng.normal(size=(per, 8))
        frame = pd.DataFrame(x, columns=FEATURES)
        p = 1.0 / (1.0 + np.exp(-(0.3 + x @ beta)))
        frame["y"] = (rng.random(per) < p).astype(np.float64)
        frame.to_parquet(path / f"part-{i:03d}.parquet", row_group_size=125_000, index=False)
    marker.write_text(str(rows))
    return path


def alternate(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, Any, float, Any]:
    """Median times of ``a`` and ``b`` run one after the other ``repeat`` times, and their last results."""
    times_a, times_b, out_a, out_b = [], [], None, None
    for _ in range(repeat):
        t_a, out_a = median_time(a, 1)
        t_b, out_b = median_time(b, 1)
        times_a.append(t_a)
        times_b.append(t_b)
    return statistics.median(times_a), out_a, statistics.median(times_b), out_b


def iterative(ctx: sd.SparkComputeContext, args: argparse.Namespace) -> None:
    from pyspark.ml.classification import LogisticRegression as MLlibLogit
    from pyspark.ml.clustering import KMeans as MLlibKMeans
    from pyspark.ml.feature import VectorAssembler

    path = make_iterative_data(ROOT / "benchmarks" / "data" / "iterative", args.rows)
    spark = ctx.session
    assembled = VectorAssembler(inputCols=FEATURES, outputCol="features").transform(spark.read.parquet(str(path)))
    data = sd.ParquetData(path)
    k, passes, seed = 8, 20, 42

    # KMeans: the centers MLlib's random init starts from (a fit of 0 iterations), given to ours
    def mllib_kmeans(iters: int) -> Any:
        return MLlibKMeans(k=k, initMode="random", seed=seed, maxIter=iters, tol=0.0).fit(assembled)

    start = np.array(mllib_kmeans(0).clusterCenters())

    def ours_kmeans() -> Any:
        return pema_compute(KMeans(FEATURES, k, init=start, max_iters=passes, tol=0.0), data, compute_context=ctx)

    t_km, fit_km, t_mkm, model_km = alternate(ours_kmeans, lambda: mllib_kmeans(passes), args.repeat)
    t_minit, _ = median_time(lambda: mllib_kmeans(0), 1)  # read + cache + random init, no pass
    mllib_centers = np.array(model_km.clusterCenters())
    km_error = float(np.max(np.abs(fit_km.centers.to_numpy() - mllib_centers) / np.abs(mllib_centers)))

    # LogisticRegression: both until the loss changes by less than 1e-10 (relative)
    def ours_logit() -> Any:
        return pema_compute(LogisticRegression("y", FEATURES, tol=1e-10), data, compute_context=ctx)

    def mllib_logit() -> Any:
        est = MLlibLogit(featuresCol="features", labelCol="y", regParam=0.0, standardization=False, tol=1e-10)
        return est.setMaxIter(1000).fit(assembled)

    t_lg, fit_lg, t_mlg, model_lg = alternate(ours_logit, mllib_logit, args.repeat)
    mllib_coef = np.concatenate([[model_lg.intercept], model_lg.coefficients.toArray()])
    lg_diff = float(np.max(np.abs(fit_lg.coefficients.to_numpy() - mllib_coef)))
    sm_diff = statsmodels_gap(path)

    print(
        f"\n{args.rows:,} rows x 8 features, 8 Parquet files, Spark {spark.version} local[2], median of {args.repeat}"
    )
    print(f"{'variant':<62}{'seconds':>9}{'ratio':>7}{'passes':>8}{'s/pass':>8}")
    it_mkm = model_km.summary.numIter
    it_mlg = model_lg.summary.totalIterations
    rows = [
        (f"MLlib KMeans(k={k}, initMode=random), {passes} iterations, tol 0", t_mkm, 1.0, it_mkm),
        ("  of which read + cache + init (a fit with maxIter=0)", t_minit, t_minit / t_mkm, 0),
        (f"pema_compute(KMeans) from MLlib's start, {passes} passes", t_km, t_km / t_mkm, fit_km.iterations),
        ("MLlib LogisticRegression(regParam=0, standardization=False, tol=1e-10)", t_mlg, 1.0, it_mlg),
        ("pema_compute(LogisticRegression(tol=1e-10))", t_lg, t_lg / t_mlg, fit_lg.iterations),
    ]
    for name, t, ratio, n in rows:
        per = f"{t / n:>8.2f}" if n else f"{'':>8}"
        print(f"{name:<62}{t:>9.2f}{ratio:>7.2f}{n:>8}{per}")
    print(f"KMeans centers, largest relative difference from MLlib's: {km_error:.1e}")
    print(f"KMeans, ours without MLlib's init: ratio {t_km / (t_mkm - t_minit):.2f} of MLlib's passes alone")
    print(f"Logistic coefficients, largest difference from MLlib's: {lg_diff:.1e}")
    print(f"Logistic coefficients on a 100,000-row sample, largest difference from statsmodels' Logit: {sm_diff:.1e}")


def statsmodels_gap(path: Path) -> float:
    import statsmodels.api as sm

    sample = pd.read_parquet(path / "part-000.parquet").iloc[:100_000]
    ours = pema_compute(LogisticRegression("y", FEATURES), sample, compute_context=sd.LocalComputeContext())
    ref = sm.Logit(sample["y"], sm.add_constant(sample[FEATURES])).fit(disp=0, method="newton", tol=1e-12)
    return float(np.max(np.abs(ours.coefficients.to_numpy() - ref.params.to_numpy())))


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
