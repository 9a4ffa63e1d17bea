"""Iterative PEMA algorithms (KMeans, LogisticRegression): accuracy, bad input, and passes over a Spark
DataFrame that do not run its lineage again."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import sparkdist as sd
from sparkdist.pema import KMeans, LogisticRegression, SeparationWarning, pema_compute

FEATURES = [f"f{i}" for i in range(8)]


@pytest.fixture(scope="module")
def logit_sample() -> pd.DataFrame:
    """100,000 rows x 8 features and a 0/1 response drawn from a logistic model."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100_000, 8))
    beta = np.array([0.5, -0.25, 0.3, 0.1, -0.4, 0.2, 0.05, -0.15])
    p = 1.0 / (1.0 + np.exp(-(0.3 + x @ beta)))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["y"] = (rng.random(len(x)) < p).astype(np.float64)
    return frame


@pytest.mark.modes("none", reason="the in-process contexts; test_pema.py compares Spark's passes with statsmodels")
def test_logistic_regression_within_1e6_of_statsmodels_on_100k_rows(ctx, logit_sample):
    import statsmodels.api as sm

    fit = pema_compute(LogisticRegression("y", FEATURES), logit_sample, compute_context=ctx)
    ref = sm.Logit(logit_sample["y"], sm.add_constant(logit_sample[FEATURES])).fit(disp=0, method="newton", tol=1e-12)
    assert fit.converged
    assert fit.iterations <= 8
    np.testing.assert_allclose(fit.coefficients.to_numpy(), ref.params.to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.std_errors.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    assert fit.deviance == pytest.approx(-2 * ref.llf, rel=1e-9)


@pytest.mark.modes("none", reason="numerics of the chunk code, the same in every context")
def test_kmeans_far_from_the_origin_matches_an_exact_lloyd(ctx):
    """Distances by ||x||² - 2x·c + ||c||² lose digits far from the origin unless the rows are moved first."""
    rng = np.random.default_rng(2)
    start = np.array([[0.0, 0.0], [3.0, 0.5], [1.0, 3.0]])
    pts = 1e6 + np.vstack([c + rng.normal(scale=0.6, size=(500, 2)) for c in start])
    centers = pts[[0, 600, 1200]].copy()
    for _ in range(10):  # Lloyd with exact differences
        labels = ((pts[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
        centers = np.array([pts[labels == j].mean(axis=0) for j in range(3)])
    sse = float(((pts - centers[labels]) ** 2).sum())

    fit = pema_compute(
        KMeans(["a", "b"], 3, init=pts[[0, 600, 1200]], max_iters=10, tol=0.0),
        pd.DataFrame(pts, columns=["a", "b"]),
        compute_context=ctx,
    )
    np.testing.assert_allclose(fit.centers.to_numpy(), centers, rtol=1e-12)
    assert fit.sizes.tolist() == np.bincount(labels, minlength=3).tolist()
    assert fit.converged  # no center moved in the last pass: its sums of squares are the exact ones
    assert fit.tot_withinss == pytest.approx(sse, rel=1e-9)


@pytest.mark.parametrize(
    ("init", "match"),
    [
        (
            [[0.0, 0.0], [1.0, 1.0]],
            r"init=\.\.\.\) must have shape \(k, len\(columns\)\) = \(3, 2\).*got shape \(2, 2\)",
        ),
        ([[0.0, 0.0, 0.0]] * 3, r"= \(3, 2\).*got shape \(3, 3\)"),
        (
            [[0.0, 0.0], [np.nan, 1.0], [2.0, np.inf]],
            r"finite numbers; 2 value\(s\) are not: \[1, 0\] = nan, \[2, 1\] = inf",
        ),
    ],
)
def test_kmeans_init_of_the_wrong_shape_or_not_finite(init, match):
    with pytest.raises(sd.InvalidArgumentError, match=match):
        KMeans(["a", "b"], 3, init=init)


def test_kmeans_init_that_is_not_numbers():
    with pytest.raises(sd.ArgumentTypeError, match=r"init=\.\.\.\) must be a 2 x 2 array of numbers.*got list"):
        KMeans(["a", "b"], 2, init=[["x", "y"], ["z", "w"]])


def test_logistic_response_not_0_1_is_named_before_any_pass(ctx):
    frame = pd.DataFrame({"x": np.arange(10.0), "y": [0, 1, 2, 0, 1, 3, 3, -1, 0, 1]})
    algo = LogisticRegression("y", ["x"])
    with pytest.raises(sd.InvalidArgumentError, match=r"response 'y' must hold only 0 and 1.*4 rows .*-1, 2, 3\)"):
        pema_compute(algo, frame, compute_context=ctx)
    assert algo.bad_rows == 0  # found on the driver: no pass ran


@pytest.mark.modes("local", "connect", "standalone", "connect-server", reason="a Spark DataFrame")
def test_logistic_response_not_0_1_on_spark_names_the_values(spark_ctx):
    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.tile([0.0, 1.0, 0.5, 7.0], 10)})
    df = spark_ctx.session.createDataFrame(frame).repartition(3)
    with pytest.raises(sd.InvalidArgumentError, match=r"20 rows hold other values \(smallest: 0\.5, 7\)"):
        pema_compute(LogisticRegression("y", ["x"]), df, compute_context=spark_ctx)


@pytest.mark.modes("none", reason="found on the driver from merged counts, the same in every context")
def test_perfect_separation_is_an_error_naming_it(ctx):
    x = np.linspace(-3, 3, 200)
    frame = pd.DataFrame({"x": x, "z": np.cos(x), "y": (x > 0.1).astype(float)})
    with pytest.raises(sd.InvalidArgumentError, match=r"perfect separation: .*\*x .* > 0 on every row with y = 1"):
        pema_compute(LogisticRegression("y", ["x", "z"]), frame, compute_context=ctx)


def test_quasi_separation_warns():
    x = np.r_[np.linspace(-3, 0, 100), np.linspace(0, 3, 100)]
    y = np.r_[np.zeros(100), np.ones(100)]
    y[[99, 100]] = [1.0, 0.0]  # the two rows at x = 0 disagree: the rest is separated
    frame = pd.DataFrame({"x": x, "y": y})
    with pytest.warns(SeparationWarning, match=r"quasi-separation: \d+ of 200 rows are fitted with probability 0 or 1"):
        pema_compute(LogisticRegression("y", ["x"], max_iters=40), frame, compute_context=sd.LocalComputeContext())


def test_no_warning_on_ordinary_data(logit_sample):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        pema_compute(
            LogisticRegression("y", FEATURES), logit_sample.iloc[:5000], compute_context=sd.LocalComputeContext()
        )


def _counted_frame(spark, folder):
    """A DataFrame whose lineage appends a line to a file in ``folder`` each time a partition is computed."""
    folder = str(folder)

    def count_calls(batches):
        import os
        import uuid

        with open(os.path.join(folder, uuid.uuid4().hex), "w"):
            pass
        yield from batches

    rng = np.random.default_rng(4)
    pts = np.vstack([c + rng.normal(scale=0.5, size=(300, 2)) for c in ([0, 0], [5, 5])])
    base = spark.createDataFrame(pd.DataFrame(pts, columns=["a", "b"])).repartition(2)
    return base.mapInPandas(count_calls, base.schema), pts


def _runs(folder):
    return len(list(folder.iterdir()))


@pytest.mark.modes("local", "connect", "standalone", "connect-server", reason="a Spark DataFrame and its lineage")
def test_passes_over_a_spark_dataframe_run_its_lineage_once(spark_ctx, tmp_path):
    from pyspark.storagelevel import StorageLevel

    spark = spark_ctx.session
    df, pts = _counted_frame(spark, tmp_path)
    fit = pema_compute(KMeans(["a", "b"], 2, init=[[1.0, 1.0], [4.0, 4.0]], tol=0.0), df, compute_context=spark_ctx)
    assert fit.iterations >= 2
    assert _runs(tmp_path) == 2  # one run per partition, for all the passes
    assert df.storageLevel == StorageLevel.NONE  # left as found
    np.testing.assert_allclose(fit.centers.sort_values("a").to_numpy(), [pts[:300].mean(0), pts[300:].mean(0)])

    # persisted by its user: read from there, and still persisted afterwards
    df.persist()
    try:
        df.count()
        before = _runs(tmp_path)
        pema_compute(KMeans(["a", "b"], 2, init=[[1.0, 1.0], [4.0, 4.0]]), df, compute_context=spark_ctx)
        assert _runs(tmp_path) == before
        assert df.storageLevel != StorageLevel.NONE
    finally:
        df.unpersist()


@pytest.mark.modes("local", "standalone", reason="the JVM's cache manager is visible in classic Spark only")
def test_persisted_frame_is_released_after_a_failing_pass(spark_ctx, tmp_path):
    spark = spark_ctx.session
    cache = spark._jsparkSession.sharedState().cacheManager()
    df, _ = _counted_frame(spark, tmp_path)
    df = df.withColumn("y", df["a"])  # not 0/1: the first pass fails on the driver
    assert cache.isEmpty()
    with pytest.raises(sd.InvalidArgumentError, match="must hold only 0 and 1"):
        pema_compute(LogisticRegression("y", ["b"]), df, compute_context=spark_ctx)
    assert cache.isEmpty()
    assert _runs(tmp_path) == 2


def test_local_context_brings_a_spark_dataframe_over_once(spark, tmp_path):
    df, _ = _counted_frame(spark, tmp_path)
    fit = pema_compute(
        KMeans(["a", "b"], 2, init=[[1.0, 1.0], [4.0, 4.0]], tol=0.0), df, compute_context=sd.LocalComputeContext()
    )
    assert fit.iterations >= 2
    assert _runs(tmp_path) == 2
