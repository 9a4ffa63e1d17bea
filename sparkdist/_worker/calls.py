"""exec_job on a worker: calls with their own seeded random streams and captured output, the first
failure ending the job when asked, and one call per executor.

A call's record is ``(index, status, value, output)``: value is the result or an ErrorInfo, output
what it printed (None when not captured).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist import _serde
from sparkdist._checks import name_of
from sparkdist._protocol import Status
from sparkdist._worker.common import (
    checked_payload,
    emit_many,
    error_info,
    executor_facts,
    executor_id,
    files_root,
    guard_exit,
    host,
    running_note,
    unpicklable,
    user_failures,
)
from sparkdist._worker.stopping import StopJob, StopPolicy, read_stop, stopped_before, write_stop
from sparkdist._worker.streams import captured_output, rng_holder, seeded_globals

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CallBatch", "call_batches", "call_rows", "run_call", "run_calls", "run_local_calls"]


@dataclass(frozen=True)
class CallBatch:
    """Everything a task needs to run its share of an exec_job's calls."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    elems: tuple[Any, ...] | None  # per-call entries, or None: calls get only the shared arguments
    rng_seed: int | None
    capture: bool
    stop_on_failure: bool
    result_limit: int | None = None  # the context's max_result_size: no one result may exceed it


def _call_args(batch: CallBatch, index: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if batch.elems is None:
        return batch.args, batch.kwargs
    entry = batch.elems[index]
    if isinstance(entry, dict):
        return batch.args, {**batch.kwargs, **entry}
    if isinstance(entry, tuple):
        return (*entry, *batch.args), batch.kwargs
    return (entry, *batch.args), batch.kwargs


def run_call(batch: CallBatch, index: int, *, in_process: bool = False) -> tuple[int, Status, Any, str | None]:
    """Run call ``index``: seeded streams when asked, output captured; never raises for a user error.

    Safe to run from several threads of one process (the in-process context): output is captured
    per thread, and a call that seeds Python's and numpy's global generators holds them (saved
    before, restored after) until it ends.
    """
    args, kwargs = _call_args(batch, index)
    holder = rng_holder()
    with seeded_globals(batch.rng_seed, (index,)) as rng, captured_output() as buffer:
        token = holder.set(rng)
        try:
            with guard_exit(in_process):
                status, value = Status.OK, batch.func(*args, **kwargs)
        except user_failures(in_process) as err:
            status, value = Status.ERROR, error_info(err, name_of(batch.func))
        finally:
            holder.reset(token)
    return (index, status, value, buffer.getvalue() if batch.capture else None)


def run_calls(
    batch: CallBatch, indices: Iterable[int], *, in_process: bool = False, notes: str | None = None
) -> Iterator[tuple[int, Status, Any, str | None]]:
    """Run calls in order; after a failure, with stop_on_failure, the task's remaining calls are
    skipped. With ``notes``, a note there says which call runs (see :func:`running_note`)."""
    for index in indices:
        with running_note(notes, f"call {index} of '{name_of(batch.func)}'"):
            record = run_call(batch, index, in_process=in_process)
        yield record
        if record[1] == Status.ERROR and batch.stop_on_failure:
            return


def run_local_calls(batch_bytes: bytes, indices: list[int], notes: str | None = None) -> bytes:
    """Entry point of LocalParallel's workers for exec_job (a note in ``notes`` says which call runs)."""
    batch: CallBatch = _serde.loads(batch_bytes)
    records: list[tuple[int, Status, bytes, str | None]] = []
    for index, status, value, output in run_calls(batch, indices, notes=notes):
        try:
            status, payload = checked_payload(status, value, batch.result_limit)
        except Exception as err:
            status, payload = Status.ERROR, _serde.dumps_result(unpicklable(err, name_of(batch.func)))
        records.append((index, status, payload, output))
    return _serde.dumps_result((executor_id(), records))


def exec_records(
    batch: CallBatch,
    tasks: Iterable[int],
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: StopPolicy | None = None,
) -> Iterator[tuple[int, Status, Any]]:
    """The outcomes ``(key, status, (value, output, where))`` of this worker's exec_job tasks:
    task t runs calls [t*chunk, (t+1)*chunk); with ``once_tag`` the first task on each executor
    runs one call and the others nothing. With ``stop``, the first failing call ends the job."""
    for task in tasks:
        if once_tag is not None:
            if _claim_executor(once_tag):
                _, status, value, output = run_call(batch, 0)
                yield (task, status, (value, output, executor_id()))
            continue
        if stop is not None:
            earlier = stopped_before(stop)
            if earlier is not None:
                if stop.raise_:
                    raise StopJob(*earlier)
                return
        where = host()
        for index, status, value, output in run_calls(batch, range(task * chunk, min(n_calls, (task + 1) * chunk))):
            if stop is not None and status == Status.ERROR:
                write_stop(stop.tag, index, value)
                if stop.raise_:
                    raise StopJob(index, value)
                yield (index, status, (value, output, where))
                return
            yield (index, status, (value, output, where))
            if stop is not None and read_stop(stop.tag) is not None:
                return  # another task of the job failed on this executor: the job is ending


def _pickled(outcome: tuple[int, Status, Any], limit: int | None, where: str) -> tuple[int, Status, bytes]:
    key, status, value = outcome
    try:
        return (key, *checked_payload(status, value, limit))
    except Exception as err:
        output = value[1] if isinstance(value, tuple) and len(value) == 3 else None
        return (key, Status.ERROR, _serde.dumps_result((unpicklable(err, where), output, host())))


def call_rows(
    batch_bytes: bytes,
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: StopPolicy | None,
    tasks: Iterator[int],
) -> Iterator[tuple[int, Status, bytes]]:
    """exec_job's tasks named by number (``tasks``); each outcome as ``(key, status, pickled value)``."""
    batch: CallBatch = _serde.loads(batch_bytes)
    for outcome in exec_records(batch, tasks, chunk, n_calls, once_tag, stop):
        yield _pickled(outcome, batch.result_limit, name_of(batch.func))


def call_batches(
    batch_bytes: bytes,
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: StopPolicy | None,
    ids: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """exec_job's tasks named by the ids in Arrow batches; results in as few result batches as fit."""
    tasks = (t for id_batch in ids for t in id_batch.column(0).to_pylist())
    yield from emit_many(call_rows(batch_bytes, chunk, n_calls, once_tag, stop, tasks))


def _claim_executor(tag: str) -> bool:
    """True for the first task of job ``tag`` on this executor (an O_EXCL marker named after the
    executor, in the folder its tasks share; without one, every task is the first)."""
    root = files_root()
    if root is None:
        return True
    marker = os.path.join(root, f".sparkdist-once-{tag}-{executor_facts()[0]}")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True
