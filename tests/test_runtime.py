"""sparkdist fits the user's runtime: dependency floors without caps, adapters where older pyarrow lacks a
method, a clear error for libraries that cannot work together; and, in ``make test-runtime``, checks that
the lane runs the installed wheel on exactly the runtime's libraries (SPARKDIST_RUNTIME_LANE names it)."""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import sparkdist as sd
from sparkdist import _compat_libs

ROOT = Path(__file__).resolve().parent.parent
LANE = os.environ.get("SPARKDIST_RUNTIME_LANE")
in_lane = pytest.mark.skipif(LANE is None, reason="checks the venv of make test-runtime")


def _dependencies() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)
    assert block is not None
    return re.findall(r'"([^"]+)"', block.group(1))


def test_dependencies_are_the_floors_sparkdist_checks_without_caps():
    found = {}
    for requirement in _dependencies():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement)
        assert match, f"{requirement!r}: a floor only (name>=version), no cap, pin or exclusion"
        found[match.group(1)] = match.group(2)
    assert found == _compat_libs.FLOORS


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ({"pandas": "1.5.3", "numpy": "1.23.5", "pyarrow": "14.0.1", "cloudpickle": "2.2.1"}, []),
        ({"pandas": "2.2.3", "numpy": "2.1.3", "pyarrow": "19.0.1", "cloudpickle": "3.0.0"}, []),
        ({"pandas": "1.4.4", "numpy": "1.21.5"}, ["pandas >= 1.5, found 1.4.4", "numpy >= 1.23, found 1.21.5"]),
        (
            {"numpy": "2.0.1", "pandas": "2.1.4"},
            ["pandas 2.1.4 was built for numpy 1.x", 'pip install "pandas>=2.2.2"'],
        ),
        ({"numpy": "2.3.0", "pyarrow": "15.0.2"}, ["pyarrow 15.0.2 was built for numpy 1.x", '"numpy<2"']),
        ({"pyarrow": "7.0.0", "cloudpickle": "2.0.0"}, ['"pyarrow>=8"', '"cloudpickle>=2.2"']),
    ],
)
def test_library_problems_name_the_library_its_version_and_what_to_install(versions, expected):
    text = " | ".join(_compat_libs.library_problems(versions))
    for part in expected:
        assert part in text
    assert bool(text) == bool(expected)


def test_libraries_that_cannot_work_together_are_an_import_error_before_any_import(monkeypatch):
    installed = {"numpy": "2.1.0", "pyarrow": "14.0.1", "pandas": "1.5.3"}

    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(_compat_libs, "_checked", [])
    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(ImportError, match=r"pyarrow 14\.0\.1 was built for numpy 1\.x .* numpy 2\.1\.0") as err:
        sd.distribute_job(len, [1, 2], compute_context=sd.LocalComputeContext())
    assert isinstance(err.value, sd.DependencyError) and isinstance(err.value, sd.ComputeContextError)
    assert "pandas 1.5.3 was built for numpy 1.x" in str(err.value)


class _Old:
    """A RecordBatch as older pyarrow has it: without select or rename_columns."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.schema, self.columns, self.column = batch.schema, batch.columns, batch.column


@pytest.mark.parametrize("old", [False, True], ids=["this-pyarrow", "older-pyarrow"])
def test_batch_adapters_give_what_pyarrow_itself_gives(old, monkeypatch):
    batch = pa.RecordBatch.from_pydict({"x": [1, 2, 3, None], "y": ["a", "b", "c", "d"], "z": [0.5, 1.5, 2.5, 3.5]})
    given = _Old(batch) if old else batch
    # older pyarrow: RecordBatch.filter takes no Expression
    monkeypatch.setattr(_compat_libs, "_filter_fallback", [True] if old else [])
    assert _compat_libs.select_columns(given, [2, 0]).to_pydict() == {"z": [0.5, 1.5, 2.5, 3.5], "x": [1, 2, 3, None]}
    assert _compat_libs.select_columns(given, ["y"]).to_pydict() == {"y": ["a", "b", "c", "d"]}
    assert _compat_libs.rename_columns(given, ["a", "b", "c"]).schema.names == ["a", "b", "c"]
    kept = _compat_libs.filter_batch(batch, pc.field("x") >= 2)
    assert isinstance(kept, pa.RecordBatch) and kept.to_pydict() == {"x": [2, 3], "y": ["b", "c"], "z": [1.5, 2.5]}
    none = _compat_libs.filter_batch(batch, pc.field("x") > 10)
    assert none.num_rows == 0 and none.schema == batch.schema


@pytest.mark.parametrize("old", [False, True], ids=["this-pyarrow", "pyarrow-before-14"])
def test_files_of_pandas_2_and_3_unify_to_the_large_string(old, monkeypatch):
    schemas = [
        pa.schema([("x", pa.float64()), ("kind", pa.string())]),
        pa.schema([("x", pa.float64()), ("kind", pa.large_string()), ("extra", pa.int64())]),
    ]
    if old:
        unify = pa.unify_schemas

        def without_promotion(schemas, **kwargs):
            if kwargs:
                raise TypeError("unify_schemas() takes no keyword arguments")
            return unify(schemas)

        monkeypatch.setattr(pa, "unify_schemas", without_promotion)
    unified = _compat_libs.unify_schemas(schemas)
    assert unified.names == ["x", "kind", "extra"]
    assert unified.field("kind").type == pa.large_string()


# -- the lane: make test-runtime ------------------------------------------------------------------------


@in_lane
def test_the_lane_runs_the_installed_wheel_not_the_checkout():
    where = Path(sd.__file__).resolve()
    assert Path(sys.prefix).resolve() in where.parents, where
    assert ROOT / "sparkdist" not in where.parents


@in_lane
def test_the_lane_has_exactly_the_runtimes_libraries_and_they_import():
    pins = dict(line.strip().split("==") for line in (Path(sys.prefix) / "pins.txt").read_text().split())
    assert {name: metadata.version(name) for name in pins} == pins
    import pandas  # noqa: F401 - each imports, with the numpy it has
    import pyarrow.dataset  # noqa: F401

    if "pyspark" in pins:
        import pyspark.pandas  # noqa: F401 - what breaks first when pip replaces numpy under a runtime
