"""PEMA: built-ins against independent references and certified values, in every context."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkdist as sd
from sparkdist.pema import (
    Crosstab,
    KMeans,
    LinearRegression,
    LogisticRegression,
    Mean,
    PemaAlgorithm,
    Summary,
    pema_compute,
)


class PemaMean(PemaAlgorithm):
    """RevoPemaR's classic example, in Python."""

    def __init__(self, column):
        self.column = column

    def initialize(self):
        self.total, self.n, self.valid = 0.0, 0, 0

    def vars_to_use(self):
        return [self.column]

    def process_data(self, chunk):
        x = chunk[self.column]
        self.total += float(x.sum())
        self.n += len(x)
        self.valid += int(x.notna().sum())

    def update_results(self, other):
        self.total += other.total
        self.n += other.n
        self.valid += other.valid

    def process_results(self):
        return self.total / self.valid if self.valid else float("nan")


def data_for(kind, ctx, frame, tmp_path, splits=6):
    """The same rows as pandas, as Parquet cut into many splits, or as a Spark DataFrame."""
    if kind == "pandas":
        return frame
    if kind == "parquet":
        path = tmp_path / "data.parquet"
        frame.to_parquet(path, row_group_size=max(1, len(frame) // splits), index=False)
        return sd.ParquetData(path, split_bytes=1)  # one row group per split
    if not ctx.is_distributed:
        pytest.skip("a Spark DataFrame needs a Spark context in this process")
    return ctx.session.createDataFrame(frame).repartition(splits)


KINDS = ["pandas", "parquet", "spark"]


@pytest.fixture(scope="module")
def regression_frame():
    rng = np.random.default_rng(11)
    n = 4000
    x = rng.normal(size=(n, 3))
    y = 1.5 + x @ np.array([2.0, -1.0, 0.25]) + rng.normal(scale=0.5, size=n)
    logit_p = 1 / (1 + np.exp(-(0.3 + x @ np.array([1.0, -0.5, 0.2]))))
    return pd.DataFrame(
        {"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y, "b": (rng.random(n) < logit_p).astype(float)}
    )


@pytest.mark.parametrize("kind", KINDS)
def test_custom_pema_mean(ctx, kind, numbers, tmp_path):
    got = pema_compute(PemaMean("x"), data_for(kind, ctx, numbers, tmp_path), compute_context=ctx)
    assert got == pytest.approx(numbers["x"].mean(), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_mean_and_summary_match_pandas(ctx, kind, numbers, tmp_path):
    data = data_for(kind, ctx, numbers, tmp_path)
    assert pema_compute(Mean("x"), data, compute_context=ctx) == pytest.approx(numbers["x"].mean(), rel=1e-12)
    table = pema_compute(Summary(), data, compute_context=ctx)
    assert list(table.index) == ["x", "k"]  # numeric columns only
    for col in ("x", "k"):
        ref = numbers[col]
        row = table.loc[col]
        assert row["count"] == ref.count() and row["missing"] == ref.isna().sum()
        np.testing.assert_allclose(
            [row["mean"], row["std"], row["var"], row["min"], row["max"]],
            [ref.mean(), ref.std(), ref.var(), ref.min(), ref.max()],
            rtol=1e-12,
        )


@pytest.mark.parametrize("kind", KINDS)
def test_crosstab_matches_pandas(ctx, kind, numbers, tmp_path):
    frame = numbers.assign(bucket=(numbers["k"] // 25).astype("int64"))
    got = pema_compute(Crosstab("g", "bucket"), data_for(kind, ctx, frame, tmp_path), compute_context=ctx)
    ref = pd.crosstab(frame["g"], frame["bucket"])
    pd.testing.assert_frame_equal(got, ref, check_names=False)


@pytest.mark.parametrize("kind", KINDS)
def test_linear_regression_matches_statsmodels(ctx, kind, regression_frame, tmp_path):
    sm = pytest.importorskip(
        "statsmodels.api", reason="a test-only library, not in the runtime set of make test-runtime"
    )

    frame = regression_frame
    fit = pema_compute(
        LinearRegression("y", ["x1", "x2", "x3"]), data_for(kind, ctx, frame, tmp_path), compute_context=ctx
    )
    ref = sm.OLS(frame["y"], sm.add_constant(frame[["x1", "x2", "x3"]])).fit()
    np.testing.assert_allclose(fit.coefficients.to_numpy(), ref.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(fit.std_errors.to_numpy(), ref.bse.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(fit.t_values.to_numpy(), ref.tvalues.to_numpy(), rtol=1e-9)
    assert fit.r_squared == pytest.approx(ref.rsquared, rel=1e-9)
    assert fit.residual_std_error == pytest.approx(np.sqrt(ref.scale), rel=1e-9)
    assert fit.n == len(frame) and list(fit.coefficients.index) == ["(Intercept)", "x1", "x2", "x3"]


def test_linear_regression_without_intercept(ctx, regression_frame):
    sm = pytest.importorskip(
        "statsmodels.api", reason="a test-only library, not in the runtime set of make test-runtime"
    )

    fit = pema_compute(LinearRegression("y", ["x1", "x2"], intercept=False), regression_frame, compute_context=ctx)
    ref = sm.OLS(regression_frame["y"], regression_frame[["x1", "x2"]]).fit()
    np.testing.assert_allclose(fit.coefficients.to_numpy(), ref.params.to_numpy(), rtol=1e-9)
    assert fit.r_squared == pytest.approx(ref.rsquared, rel=1e-9)  # uncentered, as statsmodels and R


@pytest.mark.parametrize("kind", KINDS)
def test_logistic_regression_matches_statsmodels(ctx, kind, regression_frame, tmp_path):
    sm = pytest.importorskip(
        "statsmodels.api", reason="a test-only library, not in the runtime set of make test-runtime"
    )

    frame = regression_frame
    fit = pema_compute(
        LogisticRegression("b", ["x1", "x2", "x3"]), data_for(kind, ctx, frame, tmp_path), compute_context=ctx
    )
    ref = sm.Logit(frame["b"], sm.add_constant(frame[["x1", "x2", "x3"]])).fit(
        disp=0, method="newton", tol=1e-14, maxiter=100
    )
    assert fit.converged
    np.testing.assert_allclose(fit.coefficients.to_numpy(), ref.params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(fit.std_errors.to_numpy(), ref.bse.to_numpy(), rtol=1e-7)
    assert fit.deviance == pytest.approx(-2 * ref.llf, rel=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_kmeans_matches_scikit_learn_from_the_same_start(ctx, kind, tmp_path):
    SkKMeans = pytest.importorskip(
        "sklearn.cluster", reason="a test-only library, not in the runtime set of make test-runtime"
    ).KMeans

    rng = np.random.default_rng(5)
    centers = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]])
    pts = np.vstack([c + rng.normal(scale=1.0, size=(700, 2)) for c in centers])
    frame = pd.DataFrame(pts, columns=["a", "b"])
    start = pts[[0, 800, 1500]] + 0.5
    fit = pema_compute(
        KMeans(["a", "b"], 3, init=start, tol=0.0), data_for(kind, ctx, frame, tmp_path), compute_context=ctx
    )
    ref = SkKMeans(3, init=start, n_init=1, algorithm="lloyd", tol=0.0, max_iter=50).fit(pts)
    assert fit.converged
    np.testing.assert_allclose(fit.centers.to_numpy(), ref.cluster_centers_, rtol=1e-9)
    assert fit.sizes.tolist() == np.bincount(ref.labels_, minlength=3).tolist()
    assert fit.tot_withinss == pytest.approx(ref.inertia_, rel=1e-9)


def test_kmeans_without_init_does_not_depend_on_the_split(ctx, tmp_path):
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(np.vstack([rng.normal(c, 0.3, size=(300, 2)) for c in (0, 4, 8)]), columns=["a", "b"])
    reference = pema_compute(KMeans(["a", "b"], 3, seed=1), frame, compute_context=sd.LocalComputeContext())
    got = pema_compute(
        KMeans(["a", "b"], 3, seed=1), data_for("parquet", ctx, frame, tmp_path, splits=9), compute_context=ctx
    )
    np.testing.assert_allclose(got.centers.to_numpy(), reference.centers.to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("kind", ["parquet", "spark"])
def test_same_answer_as_in_process(ctx, kind, regression_frame, tmp_path):
    local = sd.LocalComputeContext()
    for algo in (lambda: LinearRegression("y", ["x1", "x2", "x3"]), lambda: Summary(["x1", "y"])):
        here = pema_compute(algo(), regression_frame, compute_context=local)
        there = pema_compute(algo(), data_for(kind, ctx, regression_frame, tmp_path, splits=13), compute_context=ctx)
        if isinstance(here, pd.DataFrame):
            np.testing.assert_allclose(there.to_numpy(dtype=float), here.to_numpy(dtype=float), rtol=1e-9)
        else:
            np.testing.assert_allclose(there.coefficients, here.coefficients, rtol=1e-9)
            np.testing.assert_allclose(there.std_errors, here.std_errors, rtol=1e-9)


def test_algo_holds_the_merged_state_and_initialize_false_adds_data(ctx, numbers):
    first, second = numbers.iloc[:7000], numbers.iloc[7000:]
    algo = Summary(["x"])
    pema_compute(algo, first, compute_context=ctx)
    assert algo.moments.count[0] == first["x"].count()
    table = pema_compute(algo, second, compute_context=ctx, initialize=False)
    assert table.loc["x", "count"] == numbers["x"].count()
    assert table.loc["x", "std"] == pytest.approx(numbers["x"].std(), rel=1e-12)


class ChunkCounter(PemaAlgorithm):
    def initialize(self):
        self.chunks, self.rows, self.largest = 0, 0, 0

    def process_data(self, chunk):
        self.chunks += 1
        self.rows += len(chunk)
        self.largest = max(self.largest, len(chunk))

    def update_results(self, other):
        self.chunks += other.chunks
        self.rows += other.rows
        self.largest = max(self.largest, other.largest)

    def process_results(self):
        return self.chunks, self.rows, self.largest


def test_splits_are_processed_chunk_by_chunk(ctx, parquet_dir):
    chunks, rows, largest = pema_compute(
        ChunkCounter(), sd.ParquetData(parquet_dir, rows_per_chunk=300), compute_context=ctx
    )
    assert rows == 20_000 and largest <= 300 and chunks >= 20_000 // 300


# -- certified values (NIST StRD) ------------------------------------------------------------------

LONGLEY_COEF = [-3482258.63459582, 15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
                -1.03322686717359, -0.511041056535807e-01, 1829.15146461355]  # fmt: skip
LONGLEY_SE = [890420.383607373, 84.9149257747669, 0.334910077722432e-01, 0.488399681651699,
              0.214274163161675, 0.226073200069370, 455.478499142212]  # fmt: skip


def lre(got, certified):
    """Log relative error: the number of correct significant digits."""
    got, certified = np.asarray(got, float), np.asarray(certified, float)
    with np.errstate(divide="ignore"):
        return np.minimum(-np.log10(np.abs(got - certified) / np.abs(certified)), 15)


@pytest.mark.parametrize("rows_per_split", [1, 3, 16])
def test_longley_to_ten_digits_whatever_the_split(ctx, tmp_path, rows_per_split):
    longley = pytest.importorskip(
        "statsmodels.datasets.longley", reason="a test-only library, not in the runtime set of make test-runtime"
    )

    frame = longley.load_pandas().data
    xs = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]
    data = data_for("parquet", ctx, frame, tmp_path, splits=16 // rows_per_split)
    fit = pema_compute(LinearRegression("TOTEMP", xs), data, compute_context=ctx)
    assert lre(fit.coefficients, LONGLEY_COEF).min() >= 10
    assert lre(fit.std_errors, LONGLEY_SE).min() >= 10
    assert lre(fit.residual_std_error, 304.854073561965) >= 10
    assert lre(fit.r_squared, 0.995479004577296) >= 10


@pytest.mark.parametrize("splits", [1, 7, 50])
def test_numacc4_standard_deviation_to_eight_digits(ctx, tmp_path, splits):
    values = np.array([10000000.2] + [10000000.1, 10000000.3] * 500)
    data = data_for("parquet", ctx, pd.DataFrame({"v": values}), tmp_path, splits=splits)
    table = pema_compute(Summary(["v"]), data, compute_context=ctx)
    assert lre(table.loc["v", "std"], 0.1) >= 8
    assert lre(table.loc["v", "mean"], 10000000.2) >= 14


# -- bad input -----------------------------------------------------------------------------------


def test_non_numeric_column_is_named(ctx, numbers):
    with pytest.raises(sd.ArgumentTypeError, match="Summary needs numeric columns: 'g' is (large_)?string"):
        pema_compute(Summary(["x", "g"]), numbers, compute_context=ctx)
    with pytest.raises(sd.ArgumentTypeError, match="LinearRegression needs numeric columns: 'g'"):
        pema_compute(LinearRegression("x", ["g"]), numbers, compute_context=ctx)


def test_missing_column_is_named(ctx, numbers, parquet_dir):
    for data in (numbers, parquet_dir):
        with pytest.raises(sd.ColumnNotFoundError, match=r"\['nope'\]"):
            pema_compute(Mean("nope"), data, compute_context=ctx)


def test_column_without_values(ctx, tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0], "empty": [np.nan, np.nan]})
    frame.to_parquet(tmp_path / "e.parquet")
    for data in (frame, tmp_path / "e.parquet"):
        with pytest.raises(sd.EmptyDataError, match=r"columns \['empty'\] have no non-missing values"):
            pema_compute(Summary(["x", "empty"]), data, compute_context=ctx)


def test_user_algorithm_sees_a_column_without_values(ctx, tmp_path):
    # RevoPemaR's PemaMean returns NA for a column without values: the built-ins' check is theirs only
    class NaMean(PemaAlgorithm):
        def initialize(self):
            self.total, self.valid = 0.0, 0

        def vars_to_use(self):
            return ["empty"]

        def process_data(self, chunk):
            x = chunk["empty"].dropna()
            self.total, self.valid = self.total + float(x.sum()), self.valid + len(x)

        def update_results(self, other):
            self.total, self.valid = self.total + other.total, self.valid + other.valid

        def process_results(self):
            return self.total / self.valid if self.valid else float("nan")

    frame = pd.DataFrame({"x": [1.0, 2.0], "empty": [np.nan, np.nan]})
    frame.to_parquet(tmp_path / "e.parquet")
    for data in (frame, tmp_path / "e.parquet"):
        assert np.isnan(pema_compute(NaMean(), data, compute_context=ctx))


def test_singular_design_names_the_collinear_column(ctx, regression_frame):
    frame = regression_frame.assign(x4=regression_frame["x1"] * 2 - regression_frame["x2"])
    with pytest.raises(
        sd.InvalidArgumentError,
        match=r"singular: 'x4' is a linear combination of \['\(Intercept\)', 'x1', 'x2', 'x3'\]",
    ):
        pema_compute(LinearRegression("y", ["x1", "x2", "x3", "x4"]), frame, compute_context=ctx)


def test_k_larger_than_rows(ctx):
    with pytest.raises(sd.InvalidArgumentError, match=r"k=5 is larger than the number of rows \(3\)"):
        pema_compute(KMeans(["a"], 5), pd.DataFrame({"a": [1.0, 2.0, 3.0]}), compute_context=ctx)


def test_k_larger_than_rows_of_a_spark_dataframe(spark, spark_ctx):
    df = spark.createDataFrame(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    with pytest.raises(sd.InvalidArgumentError, match=r"k=5 is larger than the number of distinct complete rows \(3\)"):
        pema_compute(KMeans(["a"], 5), df, compute_context=spark_ctx)


@pytest.mark.parametrize("k", [0, -2, 1.5])
def test_k_below_one(k):
    with pytest.raises(sd.InvalidArgumentError, match="k=...\\) must be an int >= 1"):
        KMeans(["a"], k)


def test_subclass_missing_methods_is_named():
    class Half(PemaAlgorithm):
        def initialize(self):
            pass

        def process_data(self, chunk):
            pass

    with pytest.raises(sd.ArgumentTypeError, match="Half does not override update_results, process_results"):
        pema_compute(Half(), pd.DataFrame({"a": [1]}))


class BrokenMerge(ChunkCounter):
    def update_results(self, other):
        raise RuntimeError("cannot merge these")


def test_update_results_that_raises_names_class_and_method(ctx, parquet_dir):
    with pytest.raises(sd.SparkDistError, match=r"BrokenMerge\.update_results.*cannot merge these"):
        pema_compute(BrokenMerge(), sd.ParquetData(parquet_dir, split_bytes=1), compute_context=ctx)


class BrokenChunk(ChunkCounter):
    def process_data(self, chunk):
        raise ValueError("cannot read this chunk")


def test_process_data_that_raises_names_class_and_method(ctx, numbers):
    with pytest.raises(sd.JobError, match=r"BrokenChunk\.process_data.*cannot read this chunk"):
        pema_compute(BrokenChunk(), numbers.dropna(), compute_context=ctx)


def test_not_an_algorithm():
    with pytest.raises(sd.ArgumentTypeError, match="algo must be an instance of a PemaAlgorithm subclass, got str"):
        pema_compute("Summary", pd.DataFrame({"a": [1]}))  # type: ignore[arg-type]
