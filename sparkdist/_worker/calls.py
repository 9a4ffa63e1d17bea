"""exec_job on a worker: calls with their own seeded random streams and captured output, the first
failure ending the job when asked, and one call per executor.

A call's record is ``(index, status, value, output)``: value is the result or an ErrorInfo, output
what it printed (None when not captured).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist import _serde
from sparkdist._checks import name_of
from sparkdist._protocol import ErrorInfo, Status
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

if TYPE_CHECKING:
    import pyarrow as pa


# ---------------------------------------------------------------------------------------------
# exec_job: many independent calls. A call's record is (index, status, value, output, where):
# value is the result or an ErrorInfo; output is what it printed (or None when not captured).


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


_rng_var: Any = None  # contextvars.ContextVar, created lazily


def rng_holder() -> Any:
    global _rng_var
    if _rng_var is None:
        import contextvars

        _rng_var = contextvars.ContextVar("sparkdist_task_rng", default=None)
    return _rng_var


_UNSEEDED = object()


def current_task_rng() -> Any:
    """The numpy Generator of the exec_job call running in this thread, or None outside a call."""
    holder = rng_holder()
    rng = holder.get()
    if rng is _UNSEEDED:  # no rng_seed: a fresh unseeded stream, made only when asked for
        import numpy as np

        rng = np.random.default_rng()
        holder.set(rng)
    return rng


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


_globals_lock = threading.RLock()


@contextlib.contextmanager
def seeded_globals(seed: int | None, spawn_key: tuple[int, ...]) -> Iterator[Any]:
    """With a seed: Python's ``random`` and numpy's global state seeded for the call that
    ``spawn_key`` names (exec_job: ``(index,)``; exec_by: words of the group's keys), and put back
    afterwards, yielding the call's own Generator; without: yields the unseeded marker."""
    if seed is None:
        yield _UNSEEDED
        return
    import random

    import numpy as np

    # negative seeds (R takes them) get streams of their own: a sign word is added to the entropy
    seq = np.random.SeedSequence(entropy=seed if seed >= 0 else [-seed, 1], spawn_key=spawn_key)
    state = seq.generate_state(4)
    with _globals_lock:  # the generators are process-wide: one seeded call at a time
        saved = random.getstate(), np.random.get_state()
        random.seed(int.from_bytes(state.tobytes(), "little"))
        np.random.seed(state[:2])
        try:
            yield np.random.Generator(np.random.PCG64(seq))
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])


class _PerThreadStream(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr`` while calls capture their output: writes go to the
    buffer of the call running in the writing thread (or asyncio task), else to the real stream."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def write(self, text: str) -> int:
        buffer = _capture_buffer.get()
        return (buffer if buffer is not None else self.real).write(text)

    def flush(self) -> None:
        if _capture_buffer.get() is None:
            self.real.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ... of the real stream
        return getattr(self.real, name)


_capture_buffer: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar("sparkdist_out", default=None)
_capture_lock = threading.Lock()
_capturing = 0


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Capture what this thread prints (stdout and stderr) into a fresh buffer. ``sys.stdout`` and
    ``sys.stderr`` are replaced by per-thread dispatchers while any call captures, and put back
    (unless someone replaced them meanwhile) when the last one ends."""
    global _capturing
    with _capture_lock:
        if _capturing == 0:
            sys.stdout, sys.stderr = _PerThreadStream(sys.stdout), _PerThreadStream(sys.stderr)
        _capturing += 1
    buffer = io.StringIO()
    token = _capture_buffer.set(buffer)
    try:
        yield buffer
    finally:
        _capture_buffer.reset(token)
        with _capture_lock:
            _capturing -= 1
            if _capturing == 0:
                for name in ("stdout", "stderr"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _PerThreadStream):
                        setattr(sys, name, stream.real)


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


@dataclass(frozen=True)
class StopPolicy:
    """How exec_job's tasks end a job at its first failing call (``continue_on_failure=False``).

    A user error is not a transient fault, so the failing call runs once, never again on a retry.
    The failing task leaves a marker on its executor (its files folder), which the executor's other
    tasks of the job see between calls, and then either

    - ``raise_=True`` (classic Spark): fails its Spark task with :class:`StopJob`. The driver watches
      the job's failed tasks and cancels the job when it sees one. A retry of that task on the same
      executor re-raises from the marker at once; a retry elsewhere first waits ``guard_seconds``
      for that cancel (only a retry after a lost executor outlives it, and then runs the calls);
    - ``raise_=False`` (Spark Connect): returns the failure as its result, so no attempt of the task
      fails and none is retried; the driver cancels the job when it reads it.
    """

    tag: str
    raise_: bool
    guard_seconds: float = 5.0


def _marker(tag: str) -> str | None:
    root = files_root()
    return os.path.join(root, f".sparkdist-stop-{tag}") if root else None


def _read_stop(tag: str) -> tuple[int, ErrorInfo] | None:
    path = _marker(tag)
    try:
        with open(path or "", encoding="utf-8") as fh:
            return parse_stop(fh.read())
    except OSError:
        return None


def _write_stop(tag: str, index: int, info: ErrorInfo) -> None:
    path = _marker(tag)
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(str(StopJob(index, info)))
        os.replace(tmp, path)
    except OSError:
        pass


def _stopped_before(stop: StopPolicy) -> tuple[int, ErrorInfo] | None:
    """The failure that ended the job, if a task on this executor has recorded one; a classic retry
    that finds none waits for the driver's cancel first (see :class:`StopPolicy`)."""
    import time

    found = _read_stop(stop.tag)
    if found is not None or not stop.raise_:
        return found
    from pyspark import TaskContext

    tc = TaskContext.get()
    if tc is None or tc.attemptNumber() == 0:
        return None
    deadline = time.monotonic() + stop.guard_seconds
    while time.monotonic() < deadline:  # interrupted by the driver's cancel when the job is over
        time.sleep(0.1)
        found = _read_stop(stop.tag)
        if found is not None:
            return found
    return None


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
            earlier = _stopped_before(stop)
            if earlier is not None:
                if stop.raise_:
                    raise StopJob(*earlier)
                return
        where = host()
        for index, status, value, output in run_calls(batch, range(task * chunk, min(n_calls, (task + 1) * chunk))):
            if stop is not None and status == Status.ERROR:
                _write_stop(stop.tag, index, value)
                if stop.raise_:
                    raise StopJob(index, value)
                yield (index, status, (value, output, where))
                return
            yield (index, status, (value, output, where))
            if stop is not None and _read_stop(stop.tag) is not None:
                return  # another task of the job failed on this executor: the job is ending


STOP_MARKER = "SPARKDIST-STOP-JOB:"


class StopJob(RuntimeError):
    """Fails the Spark task on purpose so that Spark cancels the job's other tasks; the failed
    call's ErrorInfo rides in the message as JSON (text, never a pickle) for the driver to read."""

    def __init__(self, index: int, info: ErrorInfo) -> None:
        import base64
        import json

        blob = base64.b64encode(json.dumps({"index": index, "info": info}).encode()).decode()
        super().__init__(f"{STOP_MARKER}{blob}!")


def parse_stop(text: str) -> tuple[int, ErrorInfo] | None:
    """Driver side: the failed call carried by a StopJob inside a Spark error's text, if any."""
    import base64
    import binascii
    import json

    start = text.find(STOP_MARKER)
    end = text.find("!", start)
    if start < 0 or end < 0:
        return None
    try:
        data = json.loads(base64.b64decode(text[start + len(STOP_MARKER) : end]))
        info = data["info"]
        return int(data["index"]), ErrorInfo(
            type=str(info["type"]),
            message=str(info["message"]),
            traceback=str(info["traceback"]),
            where=str(info["where"]),
            host=str(info["host"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def _pickled(outcome: tuple[int, Status, Any], limit: int | None, where: str) -> tuple[int, Status, bytes]:
    key, status, value = outcome
    try:
        return (key, *checked_payload(status, value, limit))
    except Exception as err:
        output = value[1] if isinstance(value, tuple) and len(value) == 3 else None
        return (key, Status.ERROR, _serde.dumps_result((unpicklable(err, where), output, host())))


def rdd_exec_tasks(
    batch_bytes: bytes,
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: StopPolicy | None,
    tasks: Iterator[int],
) -> Iterator[tuple[int, Status, bytes]]:
    """Classic Spark: mapPartitions over the task numbers; results travel as pickled bytes."""
    batch: CallBatch = _serde.loads(batch_bytes)
    for outcome in exec_records(batch, tasks, chunk, n_calls, once_tag, stop):
        yield _pickled(outcome, batch.result_limit, name_of(batch.func))


def spark_exec_tasks(
    batch_bytes: bytes,
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: StopPolicy | None,
    ids: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """Spark Connect: mapInArrow over spark.range(n_tasks); results in as few Arrow batches as fit."""
    batch: CallBatch = _serde.loads(batch_bytes)
    tasks = (t for id_batch in ids for t in id_batch.column(0).to_pylist())
    outcomes = exec_records(batch, tasks, chunk, n_calls, once_tag, stop)
    yield from emit_many(_pickled(o, batch.result_limit, name_of(batch.func)) for o in outcomes)


def _claim_executor(tag: str) -> bool:
    """True for the first task of job ``tag`` on this executor (an O_EXCL marker named after the
    executor, in its files directory)."""
    from pyspark import SparkFiles

    marker = os.path.join(SparkFiles.getRootDirectory(), f".sparkdist-once-{tag}-{executor_facts()[0]}")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True
