"""PemaAlgorithm and pema_compute (RevoPemaR's PemaBaseClass and pemaCompute)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from sparkdist import jobs
from sparkdist._console import check_progress
from sparkdist._current import resolve_context
from sparkdist.context import ComputeContext
from sparkdist.distribute import distribute_job
from sparkdist.errors import ArgumentTypeError, EmptyDataError, InvalidArgumentError, SparkDistError
from sparkdist.jobs import Job
from sparkdist.sources import DataSource, PandasData, SparkData, as_data_source

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DataInfo", "PemaAlgorithm", "pema_compute"]

_REQUIRED = ("initialize", "process_data", "update_results", "process_results")
R = TypeVar("R")  # what an algorithm's process_results returns


@dataclass(frozen=True)
class DataInfo:
    """What the driver knows about the data before any job: given to :meth:`PemaAlgorithm.check_data`."""

    columns: list[str]
    types: dict[str, str]  # column -> arrow type name
    numeric: list[str]
    rows: int | None
    #: The data itself when it is an in-memory pandas DataFrame (checks of values cost no job then).
    frame: pd.DataFrame | None = None

    def require_numeric(self, columns: Sequence[str], algorithm: str) -> None:
        """Raise ArgumentTypeError naming the columns that are not numeric (absent columns are
        left to the column check that follows, which names them with the available ones)."""
        bad = [c for c in columns if c in self.types and c not in self.numeric]
        if bad:
            kinds = ", ".join(f"'{c}' is {self.types.get(c, 'missing')}" for c in bad)
            raise ArgumentTypeError(f"{algorithm} needs numeric columns: {kinds}")


class PemaAlgorithm(Generic[R]):
    """Base class of external-memory algorithms: subclass it and override the methods below.

    The object is initialized, fed the data chunk by chunk (:meth:`process_data`), merged with its
    copies from the other workers (:meth:`update_results`) and finished (:meth:`process_results`).
    Iterative algorithms set ``max_iters`` above 1 and override :meth:`has_converged` and
    :meth:`initialize_iteration`; passes repeat until converged or ``max_iters``.

    Subclass ``PemaAlgorithm[R]``, ``R`` being what :meth:`process_results` returns: it is what
    :func:`pema_compute` returns to a type checker (``Any`` for a subclass of the bare ``PemaAlgorithm``).

    Examples
    --------
    RevoPemaR's classic ``PemaMean``:

    >>> import numpy as np, pandas as pd
    >>> class PemaMean(PemaAlgorithm[float]):
    ...     def __init__(self, column):
    ...         self.column = column
    ...     def initialize(self):
    ...         self.total, self.valid = 0.0, 0
    ...     def vars_to_use(self):
    ...         return [self.column]
    ...     def process_data(self, chunk):
    ...         x = chunk[self.column].dropna()
    ...         self.total += float(x.sum())
    ...         self.valid += len(x)
    ...     def update_results(self, other):
    ...         self.total += other.total
    ...         self.valid += other.valid
    ...     def process_results(self):
    ...         return self.total / self.valid if self.valid else float("nan")
    >>> pema_compute(PemaMean("x"), pd.DataFrame({"x": [1.0, 2.0, np.nan, 6.0]}))
    3.0
    """

    #: Passes over the data at most; 1 for single-pass algorithms.
    max_iters: int = 1

    #: Refuse, before any pass, data whose used columns hold no value at all (when the driver can
    #: tell without a job). The built-in algorithms set it; a user algorithm sees such data and
    #: answers for it in :meth:`process_results` (RevoPemaR's ``PemaMean`` returns NA there).
    requires_values: bool = False

    def initialize(self) -> None:
        """Set the fields to their starting values (called once, on the driver)."""
        raise NotImplementedError

    def process_data(self, chunk: Any) -> None:
        """Update the fields from one chunk (a pandas DataFrame)."""
        raise NotImplementedError

    def update_results(self, other: Any) -> None:
        """Merge another object's fields (computed on other data) into this one's."""
        raise NotImplementedError

    def process_results(self) -> R:
        """Return the result from the merged fields (an ``R``, for a ``PemaAlgorithm[R]``)."""
        raise NotImplementedError

    def vars_to_use(self) -> list[str] | None:
        """The columns to read; None reads them all."""
        return None

    def check_data(self, info: DataInfo) -> None:
        """Driver-side checks (and set-up) against what is known of the data before any job."""

    def has_converged(self) -> bool:
        """Iterative algorithms: whether the last pass converged."""
        return False

    def initialize_iteration(self) -> None:
        """Iterative algorithms: reset the per-pass fields before each pass."""


def _where(algo: PemaAlgorithm[Any], method: str) -> str:
    return f"{type(algo).__name__}.{method}"


def _call(algo: PemaAlgorithm[Any], method: str, *args: Any) -> Any:
    try:
        return getattr(algo, method)(*args)
    except Exception as err:
        with contextlib.suppress(AttributeError):  # exceptions with __slots__ keep their plain name
            err._sparkdist_where = _where(algo, method)  # type: ignore[attr-defined]  # noqa: SLF001 - our own mark
        raise


def _process_split(chunks: Any, template: PemaAlgorithm[Any]) -> PemaAlgorithm[Any]:
    """Runs on a worker: a fresh copy of the template absorbs one split, chunk by chunk."""
    algo = copy.deepcopy(template)  # in-process contexts share the template object
    for chunk in chunks:
        _call(algo, "process_data", chunk)
    return algo


def _merge(a: PemaAlgorithm[Any], b: PemaAlgorithm[Any]) -> PemaAlgorithm[Any]:
    _call(a, "update_results", b)
    return a


def _check_algorithm(algo: Any) -> PemaAlgorithm[Any]:
    if not isinstance(algo, PemaAlgorithm):
        raise ArgumentTypeError(f"algo must be an instance of a PemaAlgorithm subclass, got {type(algo).__name__}")
    missing = [m for m in _REQUIRED if getattr(type(algo), m) is getattr(PemaAlgorithm, m)]
    if missing:
        raise ArgumentTypeError(
            f"{type(algo).__name__} does not override {', '.join(missing)} (required by PemaAlgorithm)"
        )
    return algo


def _driver_call(algo: PemaAlgorithm[Any], method: str, *args: Any) -> Any:
    """A method call on the driver; a failure names the class and the method."""
    try:
        return getattr(algo, method)(*args)
    except SparkDistError:
        raise
    except Exception as err:
        raise InvalidArgumentError(f"{_where(algo, method)} failed: {type(err).__name__}: {err}") from err


def _data_info(source: DataSource) -> DataInfo:
    import pyarrow as pa

    schema = source.arrow_schema()
    numeric = [
        f.name
        for f in schema
        if pa.types.is_integer(f.type)
        or pa.types.is_floating(f.type)
        or pa.types.is_decimal(f.type)
        or pa.types.is_boolean(f.type)
    ]
    return DataInfo(
        columns=list(schema.names),
        types={f.name: str(f.type) for f in schema},
        numeric=numeric,
        rows=source.known_rows(),
        frame=source.selected() if isinstance(source, PandasData) else None,
    )


# The overloads say what comes back: what the algorithm's process_results returns; in a Job with wait=False.
# fmt: off
@overload
def pema_compute(
    algo: PemaAlgorithm[R], data: Any, *, compute_context: ComputeContext | None = ..., initialize: bool = ...,
    progress: bool | None = ..., wait: Literal[True] | None = ...,
) -> R: ...

@overload
def pema_compute(
    algo: PemaAlgorithm[R], data: Any, *, compute_context: ComputeContext | None = ..., initialize: bool = ...,
    progress: bool | None = ..., wait: Literal[False],
) -> Job[R]: ...

@overload
def pema_compute(
    algo: PemaAlgorithm[R], data: Any, *, compute_context: ComputeContext | None = ..., initialize: bool = ...,
    progress: bool | None = ..., wait: bool | None,
) -> R | Job[R]: ...
# fmt: on


def pema_compute(
    algo: PemaAlgorithm[Any],
    data: Any,
    *,
    compute_context: ComputeContext | None = None,
    initialize: bool = True,
    progress: bool | None = None,
    wait: bool | None = None,
) -> Any:
    """Run a PEMA algorithm over ``data`` and return what ``process_results`` returns.

    On Spark each split is processed chunk by chunk on the executors (never held whole), and the
    partial objects are merged in a tree on the executors. Afterwards ``algo`` holds the final
    merged state. ``initialize=False`` continues from the object's current state (adds more data
    to an earlier result, or resumes an iterative algorithm).

    Parameters
    ----------
    algo : PemaAlgorithm
    data : anything ``distribute_job`` accepts
    compute_context : ComputeContext, optional
    initialize : bool
        Call ``algo.initialize()`` first.
    progress : bool, optional
        Show progress bars (tasks, and the passes of an iterative algorithm); default: only when
        the output is an interactive terminal or notebook.
    wait : bool, optional
        False returns a :class:`sparkdist.Job` at once; None uses the context's ``wait`` setting.

    Returns
    -------
    What ``algo.process_results()`` returns after the last pass
        ``R`` for a ``PemaAlgorithm[R]``; with ``wait=False``, a :class:`sparkdist.Job` of it (``Job[R]``).
    """
    algo = _check_algorithm(algo)
    if not isinstance(initialize, bool):
        raise ArgumentTypeError(f"initialize must be True or False, got {initialize!r}")
    ctx = resolve_context(compute_context)
    waiting = jobs.check_wait(wait, ctx)
    show = check_progress(progress)

    full = as_data_source(data).prepare(ctx)  # as ctx reads it: bad paths fail here
    _driver_call(algo, "check_data", _data_info(full))
    columns = _driver_call(algo, "vars_to_use")
    if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
        raise ArgumentTypeError(
            f"{type(algo).__name__}.vars_to_use must return a list of column names or None, got {columns!r}"
        )
    source = full.with_columns(columns) if columns is not None else full
    empty = (
        source.all_null_columns(list(columns) if columns is not None else source.column_names())
        if algo.requires_values
        else None
    )
    if empty:
        raise EmptyDataError(f"{type(algo).__name__}: columns {empty} have no non-missing values")

    def run() -> Any:
        return _passes(algo, source, ctx, initialize, show)

    return jobs.run(f"pema_compute({type(algo).__name__})", ctx, run, wait=waiting, progress=show)


def _passes(algo: PemaAlgorithm[Any], source: DataSource, ctx: ComputeContext, initialize: bool, progress: bool) -> Any:
    if initialize:
        _driver_call(algo, "initialize")
    passes = max(1, int(getattr(algo, "max_iters", 1)))
    iterative = passes > 1
    bar = _progress_bar(progress, passes, type(algo).__name__) if iterative else None
    result = None
    try:
        with _read_once(source, ctx) if iterative else contextlib.nullcontext(source) as data:
            done = 0
            while True:
                if iterative:
                    _driver_call(algo, "initialize_iteration")
                template = copy.deepcopy(algo)
                if not iterative:
                    _driver_call(template, "initialize")  # workers start empty; the driver's object absorbs them
                try:
                    merged = distribute_job(
                        _process_split, data, template, reduce=_merge, chunked=True, compute_context=ctx
                    )
                except EmptyDataError as err:
                    raise EmptyDataError(f"{type(algo).__name__}: the data has no rows to process") from err
                _call_on_driver_merge(algo, merged)
                result = _driver_call(algo, "process_results")
                done += 1
                if bar is not None:
                    bar.update(1)
                # an algorithm may add a pass (e.g. to pick starting points)
                passes = max(1, int(getattr(algo, "max_iters", 1)))
                if not iterative or done >= passes or _driver_call(algo, "has_converged"):
                    break
    finally:
        if bar is not None:
            bar.close()
    return result


@contextlib.contextmanager
def _read_once(source: DataSource, ctx: ComputeContext) -> Iterator[DataSource]:
    """The source of an iterative algorithm's passes: a Spark DataFrame's lineage runs once, not once
    per pass. On Spark the context persists its selected columns before the first pass and releases
    them after the last (see :meth:`ComputeContext.persisted`); a context that runs in this process
    brings the DataFrame over once. Other sources are read again by each pass."""
    if not isinstance(source, SparkData):
        yield source
    elif not ctx.is_distributed:
        yield PandasData(source.frame().toPandas())
    elif not ctx.accepts(source):
        yield source  # another session's DataFrame fails in the first pass, with its own message
    else:
        with ctx.persisted(source.frame(), original=source.df) as frame:
            yield SparkData(frame)


def _call_on_driver_merge(algo: PemaAlgorithm[Any], merged: PemaAlgorithm[Any]) -> None:
    _driver_call(algo, "update_results", merged)


def _progress_bar(progress: bool, total: int, name: str) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{name} passes", unit="pass", leave=False)
