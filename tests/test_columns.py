"""The column-name table: names real data brings (R-style dots, spaces, quotes, backticks, unicode,
leading digits, names that differ only in case, the empty name) reach ``func`` exactly, with and
without ``columns=``, in every source and compute context; ``columns=[]`` keeps the row count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sparkdist as sd

ODD = ["Petal.Length", "with space", "back`tick", 'say "hi"', "it's", "€uro", "数据", "1st", "Case", "case"]
ROWS = 12


def odd_frame(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({name: [float(i * 100 + r) for r in range(ROWS)] for i, name in enumerate(names)})


def seen(split: pd.DataFrame) -> tuple[list[str], list[list[float]], int]:
    """Column names, column sums and row count of a split (plain Python, so comparable anywhere)."""
    return [str(c) for c in split.columns], [[float(split.iloc[:, i].sum())] for i in range(split.shape[1])], len(split)


def merge(a: Any, b: Any) -> Any:
    names, sums_a, rows_a = a
    _, sums_b, rows_b = b
    return names, [[x[0] + y[0]] for x, y in zip(sums_a, sums_b, strict=True)], rows_a + rows_b


def sources(ctx: Any, tmp_path: Path, names: list[str]) -> dict[str, Any]:
    """The same table as every kind of source ``ctx`` reads."""
    frame = odd_frame(names)
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=5)
    out: dict[str, Any] = {"pandas": frame, "parquet": sd.ParquetData(path, engine="arrow")}
    session = getattr(ctx, "spark_session", None)
    if session is not None:
        out["parquet (Spark's reader)"] = sd.ParquetData(path, engine="spark")
        out["Spark DataFrame"] = session.createDataFrame(frame).repartition(3)
    return out


def expected(frame: pd.DataFrame, names: list[str]) -> tuple[list[str], list[list[float]], int]:
    return names, [[float(frame[n].sum())] for n in names], len(frame)


@pytest.mark.parametrize("names", [ODD, [*ODD, ""]], ids=["odd", "odd+empty"])
def test_odd_names_pass_through_and_select(ctx, tmp_path, names):
    frame = odd_frame(names)
    for kind, source in sources(ctx, tmp_path, names).items():
        if "" in names and kind not in ("pandas", "parquet"):
            continue  # Spark refuses an empty column name itself
        if kind == "parquet (Spark's reader)":
            # Spark's reader compares names without case: "Case" and "case" cannot be read by it
            with pytest.raises(sd.DataSourceError, match="caseSensitive"):
                sd.distribute_job(seen, source, compute_context=ctx)
            continue
        got = sd.distribute_job(seen, source, reduce=merge, compute_context=ctx)
        assert got == expected(frame, names), kind
        pick = ["Case", "数据", "Petal.Length", "back`tick", 'say "hi"'] + ([""] if "" in names else [])
        got = sd.distribute_job(seen, source, columns=pick, reduce=merge, compute_context=ctx)
        assert got == expected(frame, pick), kind


def test_no_columns_keeps_the_rows(ctx, tmp_path):
    for kind, source in sources(ctx, tmp_path, ["a", "b.c"]).items():
        got = sd.distribute_job(lambda s: (list(s.columns), len(s)), source, columns=[], compute_context=ctx)
        assert {tuple(names) for names, _ in got} == {()}, kind
        assert sum(n for _, n in got) == ROWS, kind
        total = sd.distribute_job(len, source, columns=[], reduce=lambda a, b: a + b, compute_context=ctx)
        assert total == ROWS, kind


def test_pema_on_odd_names(ctx, tmp_path):
    names = ["Petal.Length", "back`tick", "Case", "case"]
    for kind, source in sources(ctx, tmp_path, names).items():
        if kind == "parquet (Spark's reader)":
            continue  # "Case" and "case": see above
        got = sd.pema.pema_compute(sd.pema.Summary(["Petal.Length", "back`tick", "case"]), source, compute_context=ctx)
        assert list(got.index) == ["Petal.Length", "back`tick", "case"], kind
        assert got.loc["case", "mean"] == pytest.approx(300 + (ROWS - 1) / 2), kind
