"""The one place that asks "which pandas, numpy, pyarrow?" (``_compat`` asks it of pyspark): the lowest
versions sparkdist works with, a clear error for libraries that cannot work together, and adapters where
an older pyarrow lacks a method (the driver's and the executors' pyarrow alike).

Nothing here imports pyarrow at module level: ``import sparkdist`` stays light.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc

#: The lowest versions sparkdist works with: pyproject.toml's floors (tests/test_runtime.py checks), which
#: ``make test-runtime`` runs the tests on, as well as on Databricks Runtime 15.4 LTS's set.
FLOORS = {"pandas": "1.5", "numpy": "1.23", "pyarrow": "8", "cloudpickle": "2.2", "tqdm": "4.50"}
#: Built against numpy 1.x, these cannot be imported under numpy 2 (their wheels do not tell pip so).
_NUMPY2_NEEDS = {"pandas": "2.2.2", "pyarrow": "16"}
_checked: list[bool] = []
_filter_fallback: list[bool] = []  # [True] once RecordBatch.filter refused an Expression


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string.

    >>> version_tuple("1.23.5"), version_tuple("2.0.0rc1"), version_tuple("15.0.2+db")
    ((1, 23, 5), (2, 0, 0), (15, 0, 2))
    """
    lead = re.match(r"[\d.]*", version)
    return tuple(int(n) for n in re.findall(r"\d+", lead.group() if lead else ""))


def library_problems(versions: dict[str, str]) -> list[str]:
    """What keeps these versions (``name -> version``) from working with sparkdist: one sentence each,
    naming the library, its version and what to install; empty when they work.

    >>> library_problems({"pandas": "1.5.3", "numpy": "1.23.5", "pyarrow": "14.0.1", "cloudpickle": "2.2.1"})
    []
    >>> library_problems({"numpy": "2.1.0", "pyarrow": "14.0.1"})
    ['pyarrow 14.0.1 was built for numpy 1.x and cannot be imported with numpy 2.1.0: pip install "pyarrow>=16" (or "numpy<2")']
    >>> library_problems({"pandas": "1.4.4"})
    ['sparkdist needs pandas >= 1.5, found 1.4.4: pip install "pandas>=1.5"']
    """
    problems = [
        f'sparkdist needs {name} >= {floor}, found {versions[name]}: pip install "{name}>={floor}"'
        for name, floor in FLOORS.items()
        if name in versions and version_tuple(versions[name]) < version_tuple(floor)
    ]
    numpy = versions.get("numpy", "0")
    if version_tuple(numpy) >= (2,):
        problems += [
            f"{name} {versions[name]} was built for numpy 1.x and cannot be imported with numpy {numpy}: "
            f'pip install "{name}>={needed}" (or "numpy<2")'
            for name, needed in _NUMPY2_NEEDS.items()
            if name in versions and version_tuple(versions[name]) < version_tuple(needed)
        ]
    return problems


def check_libraries() -> None:
    """Raise DependencyError (an ImportError) naming the libraries of this Python that sparkdist cannot
    work with, read from their metadata before importing them would end in an ABI traceback. Once per
    process."""
    if _checked:
        return
    from importlib import metadata

    versions = {}
    for name in FLOORS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    problems = library_problems(versions)
    if problems:
        from sparkdist.errors import DependencyError

        raise DependencyError("; ".join(problems))
    _checked.append(True)


def select_columns(batch: pa.RecordBatch, columns: list[int] | list[str]) -> pa.RecordBatch:
    """``batch.select(columns)``, by position or name (pyarrow 8 has no RecordBatch.select)."""
    if hasattr(batch, "select"):
        return batch.select(columns)
    import pyarrow as pa

    idx = [c if isinstance(c, int) else batch.schema.get_field_index(c) for c in columns]
    return pa.RecordBatch.from_arrays([batch.column(i) for i in idx], schema=pa.schema([batch.schema[i] for i in idx]))


def rename_columns(batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    """``batch.rename_columns(names)`` (pyarrow 14 has it on Table only)."""
    if hasattr(batch, "rename_columns"):
        return batch.rename_columns(names)
    import pyarrow as pa

    return pa.RecordBatch.from_arrays(batch.columns, names=names)


def filter_batch(batch: pa.RecordBatch, expression: pc.Expression) -> pa.RecordBatch:
    """The rows of ``batch`` where ``expression`` holds: RecordBatch.filter where it takes an Expression
    (pyarrow 14 does not), else an in-memory dataset evaluates it."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    if not _filter_fallback:
        try:
            return batch.filter(expression)
        except TypeError:  # "Got unexpected argument type <class 'pyarrow._compute.Expression'>"
            _filter_fallback.append(True)
    table = pads.dataset(pa.Table.from_batches([batch])).to_table(filter=expression)
    columns = [pa.concat_arrays(c.chunks) if c.num_chunks else pa.array([], c.type) for c in table.columns]
    return pa.RecordBatch.from_arrays(columns, schema=table.schema)


def unify_schemas(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for files that differ only by large and small variants of a type (pandas 2 and 3 write
    ``string`` / ``large_string``): the large one wins, as pyarrow >= 14 promotes them; before, here."""
    import pyarrow as pa

    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except TypeError:  # no promote_options: the first schema with the large variant decides
        fields: dict[str, pa.Field] = {}
        for fld in (f for schema in schemas for f in schema):
            if fld.name not in fields or ("large_" in str(fld.type) and "large_" not in str(fields[fld.name].type)):
                fields[fld.name] = fld
        return pa.schema(list(fields.values()))


def partition_keys(expression: pc.Expression) -> dict[str, Any]:
    """``pyarrow.dataset.get_partition_keys`` (a private name in pyarrow 8)."""
    import pyarrow.dataset as pads

    get = getattr(pads, "get_partition_keys", None) or pads._get_partition_keys
    return dict(get(expression))


# -- requirements (packages=) -------------------------------------------------------------------------


def _packaging() -> Any:
    """The ``packaging`` library, or pip's own copy of it."""
    try:
        import packaging.requirements
        import packaging.utils
    except ImportError:
        try:
            from pip._vendor import packaging  # type: ignore[no-redef]
        except ImportError as err:
            from sparkdist.errors import DependencyError

            raise DependencyError("packages= needs the 'packaging' library or pip: pip install packaging") from err
    return packaging


def requirements(value: Any, arg: str) -> tuple[str, ...]:
    """``packages=``: requirement strings as pip takes them (``"statsmodels>=0.14"``), checked, in a
    stable order; None or empty gives ().

    >>> requirements(["statsmodels>=0.14", "msgpack"], "packages")
    ('msgpack', 'statsmodels>=0.14')
    """
    from sparkdist.errors import ArgumentTypeError, InvalidArgumentError

    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ArgumentTypeError(
            f"{arg} must be a list of requirement strings such as ['statsmodels>=0.14'], got {value!r}"
        )
    if not value:
        return ()
    packaging = _packaging()
    for text in value:
        try:
            packaging.requirements.Requirement(text)
        except packaging.requirements.InvalidRequirement as err:
            raise InvalidArgumentError(f"{arg}: {text!r} is not a requirement pip understands: {err}") from err
    return tuple(sorted(set(value)))


def unsatisfied(wanted: tuple[str, ...]) -> list[str]:
    """The requirements this Python does not satisfy, each with what it has instead ("not installed",
    "found 1.2.0"); markers that do not apply here are skipped."""
    from importlib import metadata

    if not wanted:  # no packages=: nothing to check, and no need for packaging or pip
        return []
    packaging = _packaging()
    missing = []
    for text in wanted:
        req = packaging.requirements.Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            found = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(f"{text} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(found, prereleases=True):
            missing.append(f"{text} (found {found})")
    return missing
