"""``output=`` on the driver: the argument checked and resolved to a Parquet dataset or a Delta table
before any job, the user's function wrapped to write where it runs, and one commit of what the
succeeded tasks wrote (or, on failure, cancel or Ctrl-C, nothing).

>>> resolve(None, mode="error", partition_by=None) is None
True
>>> resolve(None, mode="append", partition_by=None)
Traceback (most recent call last):
...
sparkdist.errors.InvalidArgumentError: mode='append' applies only with output=; give output= (a path, ParquetData or DeltaData) or leave mode at its default
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

from sparkdist import jobs
from sparkdist._protocol import CallRecord, Status
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError
from sparkdist.outputs.records import WriteRecord, WriteReport
from sparkdist.outputs.writer import OutputWriter, Target
from sparkdist.sources import DataSource, DeltaData, ParquetData

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MODES", "Mode", "Output", "OutputArg", "OutputDict", "OutputList", "Unit", "resolve", "with_output"]

log = logging.getLogger("sparkdist")

MODES = ("error", "overwrite", "append")
#: What ``mode=`` takes.
Mode = Literal["error", "overwrite", "append"]
#: What ``output=`` takes: a path (a Parquet dataset's folder), a ParquetData or a DeltaData.
OutputArg = Union[str, "os.PathLike[str]", ParquetData, DeltaData]


@dataclass(frozen=True)
class Unit:
    """What one split, group or call wrote: ``label`` names it in messages, ``index`` orders it in the
    job (and names its files)."""

    label: str
    index: int
    record: WriteRecord


class OutputList(list):  # type: ignore[type-arg]
    """exec_job's per-call results under ``output=`` (rows written, or a TaskError), with ``.output``:
    the data source of what the job committed."""

    output: DataSource | None = None


class OutputDict(dict):  # type: ignore[type-arg]
    """exec_job's named (or per-executor) results under ``output=``, with ``.output`` as for OutputList."""

    output: DataSource | None = None


def with_output(values: Any, source: DataSource, continue_on_failure: bool) -> Any:
    """exec_job's results under ``output=``: the source alone (``continue_on_failure=False``), else
    the per-call results with each call's rows written in place of its record, and ``.output``."""
    if not continue_on_failure:
        return source

    def rows(value: Any) -> Any:
        return value.rows if isinstance(value, WriteRecord) else value

    done: OutputList | OutputDict
    if isinstance(values, dict):
        done = OutputDict((k, rows(v)) for k, v in values.items())
    else:
        done = OutputList(rows(v) for v in values)
    done.output = source
    return done


class Output(abc.ABC):
    """A destination being written by one job: ``target()`` for the tasks, then ``commit()`` once, or
    ``abort()``."""

    def __init__(self, uri: str, mode: str, partition_by: tuple[str, ...]) -> None:
        self.uri, self.mode, self.partition_by = uri, mode, partition_by
        self.job = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.units: list[Unit] = []
        self.committed = False  # from here on, a failure must not remove what the output holds

    def begin(self) -> None:  # noqa: B027 - a hook with a do-nothing default
        """In the job, before its tasks: make what they write into (and so check it is writable)."""

    @abc.abstractmethod
    def target(self) -> Target:
        """Where the tasks write (picklable)."""

    @abc.abstractmethod
    def commit(self) -> DataSource:
        """Make what ``self.units`` wrote the output's content; the source of the output as committed."""

    @abc.abstractmethod
    def abort(self) -> None:
        """The job failed or was cancelled: remove what it wrote; the output stays as it was."""

    def inputs(self) -> list[str]:
        """Paths this output writes under (for the check against the job's input)."""
        return [self.uri]

    # -- what the API calls ----------------------------------------------------------------------

    def wrap(self, func: Callable[..., Any], keys: Sequence[tuple[str, pa.DataType]] | None = None) -> OutputWriter:
        return OutputWriter(func, self.target(), None if keys is None else tuple(keys))

    def written(self, units: Iterable[tuple[str, int, Any]]) -> None:
        """The records of the splits, groups or calls that succeeded (labelled and numbered)."""
        self.units = [Unit(label, index, record) for label, index, record in units if isinstance(record, WriteRecord)]

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """The block runs the job and commits: any exception in it (a failed split, a cancel, Ctrl-C)
        aborts instead, so the output stays as it was."""
        try:
            self.begin()
            yield
        except BaseException:
            if not self.committed:
                self.abort()
            raise

    def calls(
        self,
        run_calls: Callable[[], list[CallRecord]],
        finish: Callable[[list[CallRecord]], Any],
        names: list[Any] | None,
        continue_on_failure: bool,
    ) -> Any:
        """exec_job's calls under ``output=``: those that succeeded are committed; a failed
        (continue_on_failure=False), cancelled or interrupted job commits nothing."""
        with self.writing():
            records = run_calls()
            ordered = sorted(records, key=lambda r: (r.call, r.where))  # once_per_executor: one call 0 each
            self.written(
                (f"call {names[r.call]!r}" if names is not None else f"call {r.call}", i, r.value)
                for i, r in enumerate(ordered)
                if r.status == Status.OK
            )
            return with_output(finish(records), self.commit(), continue_on_failure)

    def check_not_cancelled(self) -> None:
        """Right before the commit: a job cancelled (or Ctrl-C'd) meanwhile commits nothing."""
        if jobs.cancel_requested():
            import concurrent.futures

            raise concurrent.futures.CancelledError(f"the job writing to '{self.uri}' was canceled before its commit")

    def report(self, version: int | None = None) -> WriteReport:
        files = [f for u in self.units for f in u.record.files]
        report = WriteReport(sum(f.rows for f in files), len(files), sum(f.bytes for f in files), self.uri, version)
        log.info("sparkdist: %s", report)
        return report


def resolve(
    output: Any,
    *,
    mode: Any,
    partition_by: Any,
    reduce: Any = None,
    source: DataSource | None = None,
) -> Output | None:
    """``output=`` (with ``mode=`` and ``partition_by=``) checked and resolved before any job: None
    when there is no output."""
    if output is None:
        if mode != "error":
            raise InvalidArgumentError(
                f"mode={mode!r} applies only with output=; give output= (a path, ParquetData or DeltaData) or leave "
                "mode at its default"
            )
        if partition_by is not None:
            raise InvalidArgumentError("partition_by= applies only with output=; give output= or leave it out")
        return None
    if reduce is not None:
        raise InvalidArgumentError(
            "output= and reduce= cannot be combined: with output= each split's frames are written where they are "
            "made and nothing comes back to reduce. Drop reduce=, or drop output= and reduce the results"
        )
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(repr(m) for m in MODES)}; got {mode!r}")
    parts = _partition_by(partition_by)
    from sparkdist.outputs.delta import DeltaOutput
    from sparkdist.outputs.parquet import ParquetOutput

    out: Output
    if isinstance(output, DeltaData):
        out = DeltaOutput(output, mode, parts)
    elif isinstance(output, ParquetData):
        if len(output.paths) != 1:
            raise InvalidArgumentError(f"output= must name one folder; the ParquetData given names {output.paths}")
        out = ParquetOutput(output.paths[0], mode, parts, output.filesystem)
    elif isinstance(output, (str, os.PathLike)):
        out = ParquetOutput(os.fspath(output), mode, parts)
    else:
        raise ArgumentTypeError(
            "output must be a path (str or os.PathLike: a Parquet dataset's folder), a ParquetData or a DeltaData; "
            f"got {type(output).__module__}.{type(output).__name__}"
        )
    if source is not None:
        _check_not_inside(out, source)
    return out


def _partition_by(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        raise ArgumentTypeError(f"partition_by must be a list of column names (str), got {value!r}")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"partition_by must not repeat a column, got {list(names)!r}")
    return tuple(names)


def _input_paths(source: DataSource) -> list[str]:
    if isinstance(source, DeltaData):
        return [source.path]
    if isinstance(source, ParquetData):
        return list(source.paths)
    return []


def _inside(path: str, folder: str) -> bool:
    path, folder = path.split("?", 1)[0].rstrip("/"), folder.split("?", 1)[0].rstrip("/")
    return path == folder or path.startswith(folder + "/")


def _check_not_inside(out: Output, source: DataSource) -> None:
    for read in _input_paths(source):
        static = read.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        for written in out.inputs():
            if _inside(written, static) or _inside(static, written):
                raise InvalidArgumentError(
                    f"output '{written}' and the job's input '{read}' overlap (one is inside the other): the job "
                    "would read what it writes, or overwrite what it reads. Write the output to another folder"
                )
