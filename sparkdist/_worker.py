"""Code that runs on executors and pool workers.

Small module-level functions only. They import heavy modules inside, and never capture a
SparkSession, a compute context or ``self``: what they need arrives as pickled bytes made on
the driver (see ``sparkdist.distribute``).

A split's *outcome* is a tuple ``(split, status, value)`` where status is ``"ok"`` (value is
the function's result), ``"empty"`` (the split had no rows; the function was not called) or
``"error"`` (value is an :class:`ErrorInfo` dict). A result bigger than the context's
``max_result_size`` is not sent: its outcome has status ``"too_large"`` and its pickled size as value.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from sparkdist import _serde

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

OK, EMPTY, ERROR, TOO_LARGE = "ok", "empty", "error", "too_large"

#: Schema of every row that sparkdist's Spark tasks emit.
RESULT_SCHEMA = "split long, part int, nparts int, status string, payload binary"

Outcome = tuple[int, str, Any]


class ErrorInfo(TypedDict):
    """What a failed user call sends back instead of raising."""

    type: str
    message: str
    traceback: str
    where: str  # the function or method that failed
    host: str


@dataclass(frozen=True)
class SplitTask:
    """What one call of the user's function needs, besides its data."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    chunked: bool
    result_limit: int | None = None  # the context's max_result_size: no one result may exceed it


def _error_info(err: BaseException, where: str) -> ErrorInfo:
    frames = traceback.format_exception(type(err), err, err.__traceback__)
    # Drop sparkdist's own frames so the user sees their code first.
    text = "".join(f for f in frames if f"sparkdist{os.sep}_worker.py" not in f)
    return ErrorInfo(
        type=type(err).__name__,
        message=str(err),
        traceback=text,
        where=getattr(err, "_sparkdist_where", where),
        host=_host(),
    )


def _host() -> str:
    try:
        from pyspark import TaskContext

        tc = TaskContext.get()
        if tc is not None:
            return f"{socket.gethostname()} (pid {os.getpid()}, stage {tc.stageId()}, partition {tc.partitionId()})"
    except Exception:  # pragma: no cover - pyspark always present, TaskContext optional
        pass
    return f"{socket.gethostname()} (pid {os.getpid()})"


def _peek(chunks: Iterator[pd.DataFrame]) -> tuple[pd.DataFrame | None, Iterator[pd.DataFrame]]:
    """First non-empty chunk, and an iterator that still yields it."""
    for chunk in chunks:
        if len(chunk):
            return chunk, chunks
    return None, chunks


def run_split(task: SplitTask, split: int, chunks: Iterator[pd.DataFrame]) -> Outcome:
    """Call the user's function on one split; never raises for a user error."""
    import itertools

    import pandas as pd

    try:
        first, rest = _peek(chunks)
        if first is None:
            return (split, EMPTY, None)
        if task.chunked:
            data: Any = itertools.chain([first], (c for c in rest if len(c)))
        else:
            others = [c for c in rest if len(c)]
            data = pd.concat([first, *others], ignore_index=True) if others else first.reset_index(drop=True)
        return (split, OK, task.func(data, *task.args, **task.kwargs))
    except Exception as err:
        return (split, ERROR, _error_info(err, _name(task.func)))


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def fold(reduce: Callable[[Any, Any], Any], outcomes: Iterable[Outcome]) -> Outcome | None:
    """Fold outcomes (sorted by split) with ``reduce``; the first error wins; empties are skipped."""
    acc: Outcome | None = None
    for outcome in outcomes:
        split, status, value = outcome
        if status in (ERROR, TOO_LARGE):
            return outcome
        if status == EMPTY:
            continue
        if acc is None:
            acc = outcome
            continue
        try:
            acc = (acc[0], OK, reduce(acc[2], value))
        except Exception as err:
            return (split, ERROR, _error_info(err, _name(reduce)))
    return acc


# ---------------------------------------------------------------------------------------------
# Local contexts: a task travels as one pickled payload and comes back as pickled bytes.


def run_local_payload(payload: bytes) -> bytes:
    """Entry point of LocalParallel's worker processes."""
    task_bytes, split, source_split = _serde.loads(payload)
    task: SplitTask = _serde.loads(task_bytes)
    split, status, value = run_split(task, split, source_split.chunks())
    try:
        status, payload = checked_payload(status, value, task.result_limit)
    except Exception as err:
        return _serde.dumps_result((split, ERROR, _unpicklable_result(err, task)))
    return _serde.dumps_result((split, status, payload))


def checked_payload(status: str, value: Any, limit: int | None) -> tuple[str, bytes]:
    """``value`` pickled to send to the driver; past ``limit`` bytes, only its size is sent."""
    payload = _serde.dumps_result(value)
    if limit is not None and len(payload) > limit:
        return TOO_LARGE, _serde.dumps_result(len(payload))
    return status, payload


def _unpicklable_result(err: BaseException, task: SplitTask) -> ErrorInfo:
    info = _error_info(err, _name(task.func))
    info["message"] = f"the result of {_name(task.func)} cannot be pickled to return it: {err}"
    return info


# ---------------------------------------------------------------------------------------------
# Spark: functions given to mapInArrow. Each is wrapped in functools.partial with bytes made on
# the driver, so what Spark pickles is a reference to this module plus those bytes.


def _emit(split: int, status: str, value: Any, limit: int | None) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    try:
        status, payload = checked_payload(status, value, limit)
    except Exception as err:
        status, payload = ERROR, _serde.dumps_result(_error_info(err, "pickling the result"))
    parts = _serde.split_parts(payload)
    for i, part in enumerate(parts):
        yield pa.RecordBatch.from_pydict(
            {"split": [split], "part": [i], "nparts": [len(parts)], "status": [status], "payload": [part]},
            schema=_result_arrow_schema(),
        )


@functools.lru_cache(maxsize=1)
def _result_arrow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("split", pa.int64()),
            ("part", pa.int32()),
            ("nparts", pa.int32()),
            ("status", pa.string()),
            ("payload", pa.binary()),
        ]
    )


def _emit_outcome(outcome: Outcome, limit: int | None) -> Iterator[pa.RecordBatch]:
    return _emit(*outcome, limit)


def probe_files(filesystem: Any, paths: list[str], ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On an executor: can pyarrow reach these files here (open them and read a few bytes)? One row
    (ok, reason). A file that is there but damaged counts as reachable: reading it names it."""
    import pyarrow as pa

    for _ in ids:
        pass
    ok, reason = True, ""
    for path in paths:
        try:
            with filesystem.open_input_file(path) as fh:
                fh.read(4)
        except Exception as err:
            ok, reason = False, f"{type(err).__name__} opening '{path}' on {socket.gethostname()}: {err}"
            break
    yield pa.RecordBatch.from_pydict({"ok": [ok], "reason": [reason]})


def _partition_id() -> int:
    from pyspark import TaskContext

    tc = TaskContext.get()
    return tc.partitionId() if tc is not None else 0


def spark_map_frame(task_bytes: bytes, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over a DataFrame: this partition is one split."""
    task: SplitTask = _serde.loads(task_bytes)
    split = _partition_id()
    chunks = (b.to_pandas() for b in batches)
    yield from _emit_outcome(run_split(task, split, chunks), task.result_limit)


def spark_map_splits(task_bytes: bytes, splits_bytes: bytes, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n)``: each id names a split that this task reads itself."""
    task: SplitTask = _serde.loads(task_bytes)
    splits = _serde.loads(splits_bytes)
    for batch in ids:
        for split in batch.column(0).to_pylist():
            yield from _emit_outcome(run_split(task, split, splits[split].chunks()), task.result_limit)


def spark_map_fold_groups(
    task_bytes: bytes,
    splits_bytes: bytes,
    reduce_bytes: bytes,
    group_size: int,
    n_splits: int,
    ids: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n_groups)``: group g reads splits [g*size, (g+1)*size) itself
    and folds them in order, so the first level of the tree needs no second stage."""
    task: SplitTask = _serde.loads(task_bytes)
    splits = _serde.loads(splits_bytes)
    reduce = _serde.loads(reduce_bytes)
    for batch in ids:
        for group in batch.column(0).to_pylist():
            first = group * group_size
            members = range(first, min(n_splits, first + group_size))
            folded = fold(reduce, (run_split(task, i, splits[i].chunks()) for i in members))
            yield from _emit_outcome(folded if folded is not None else (first, EMPTY, None), task.result_limit)


def spark_reduce_groups(
    reduce_bytes: bytes, group_size: int, limit: int | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """One level of the tree reduce: rows arrive sorted by (split, part); fold each group of
    ``group_size`` consecutive splits and emit one outcome per group, keyed by its first split."""
    reduce = _serde.loads(reduce_bytes)
    for group, outcomes in _groups(_assemble(batches), group_size):
        folded = fold(reduce, outcomes)
        yield from _emit_outcome(folded if folded is not None else (group * group_size, EMPTY, None), limit)


def _groups(outcomes: Iterator[Outcome], group_size: int) -> Iterator[tuple[int, Iterator[Outcome]]]:
    import itertools

    return itertools.groupby(outcomes, key=lambda o: o[0] // group_size)


def _assemble(batches: Iterator[pa.RecordBatch]) -> Iterator[Outcome]:
    """Rebuild outcomes from result rows sorted by (split, part); one split in memory at a time."""
    current: int | None = None
    status = ""
    parts: list[bytes] = []
    for batch in batches:
        cols = batch.to_pydict()
        for split, part, status_, payload in zip(
            cols["split"], cols["part"], cols["status"], cols["payload"], strict=False
        ):
            if part == 0:
                if current is not None:
                    yield (current, status, _serde.loads(_serde.join_parts(parts)))
                current, status, parts = split, status_, []
            parts.append(payload)
    if current is not None:
        yield (current, status, _serde.loads(_serde.join_parts(parts)))


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


def _rng_holder() -> Any:
    global _rng_var
    if _rng_var is None:
        import contextvars

        _rng_var = contextvars.ContextVar("sparkdist_task_rng", default=None)
    return _rng_var


_UNSEEDED = object()


def current_task_rng() -> Any:
    """The numpy Generator of the exec_job call running in this thread, or None outside a call."""
    holder = _rng_holder()
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


def run_call(batch: CallBatch, index: int) -> tuple[int, str, Any, str | None]:
    """Run call ``index``: seeded streams when asked, output captured; never raises for a user error.

    Safe to run from several threads of one process (the in-process context): output is captured
    per thread, and a call that seeds Python's and numpy's global generators holds them (saved
    before, restored after) until it ends.
    """
    args, kwargs = _call_args(batch, index)
    holder = _rng_holder()
    with _seeded_globals(batch.rng_seed, index) as rng, _captured_output() as buffer:
        token = holder.set(rng)
        try:
            status, value = OK, batch.func(*args, **kwargs)
        except Exception as err:
            status, value = ERROR, _error_info(err, _name(batch.func))
        finally:
            holder.reset(token)
    return (index, status, value, buffer.getvalue() if batch.capture else None)


_globals_lock = threading.RLock()


@contextlib.contextmanager
def _seeded_globals(seed: int | None, index: int) -> Iterator[Any]:
    """With a seed: Python's ``random`` and numpy's global state seeded for call ``index`` (and put
    back afterwards), yielding the call's own Generator; without: yields the unseeded marker."""
    if seed is None:
        yield _UNSEEDED
        return
    import random

    import numpy as np

    seq = np.random.SeedSequence(entropy=seed, spawn_key=(index,))
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
def _captured_output() -> Iterator[io.StringIO]:
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


def run_calls(batch: CallBatch, indices: Iterable[int]) -> Iterator[tuple[int, str, Any, str | None]]:
    """Run calls in order; after a failure, with stop_on_failure, the task's remaining calls are skipped."""
    for index in indices:
        record = run_call(batch, index)
        yield record
        if record[1] == ERROR and batch.stop_on_failure:
            return


def run_local_calls(batch_bytes: bytes, indices: list[int]) -> bytes:
    """Entry point of LocalParallel's workers for exec_job."""
    batch: CallBatch = _serde.loads(batch_bytes)
    records = []
    for index, status, value, output in run_calls(batch, indices):
        try:
            status, payload = checked_payload(status, value, batch.result_limit)
        except Exception as err:
            status, payload = ERROR, _serde.dumps_result(_error_info(err, "pickling the result"))
        records.append((index, status, payload, output))
    return _serde.dumps_result((_executor_id(), records))


def _executor_id() -> str:
    """This worker's executor, as "host/executor": Spark's executor id where it can be found."""
    return f"{socket.gethostname()}/{_executor_facts()[0]}"


@functools.lru_cache(maxsize=1)
def _executor_facts() -> tuple[str, int | None]:
    """(executor id, cores) of the Spark executor this Python worker serves, as far as it can tell.

    The id comes from ``SPARK_EXECUTOR_ID`` (Kubernetes), else from the executor JVM's command line
    (``--executor-id``/``--cores`` of CoarseGrainedExecutorBackend: standalone, YARN, local-cluster;
    the JVM is an ancestor of this process), else from the executor's work folder
    (``.../app-<id>/<executor id>``), else the block manager folder Spark gives its Python workers
    (unique per executor). "driver" in local mode, where tasks run in the driver's JVM.
    """
    import re

    env_id = os.environ.get("SPARK_EXECUTOR_ID")
    env_cores = os.environ.get("SPARK_EXECUTOR_CORES")
    cores = int(env_cores) if env_cores and env_cores.isdigit() else None
    jvm_id, jvm_cores = _executor_jvm_args()
    eid = env_id or jvm_id
    cores = cores or jvm_cores
    if not eid:
        for folder in (os.getcwd(), _files_root()):
            m = re.search(r"/app-[^/]+/(\d+)(?:/|$)", folder or "")
            if m:
                eid = m.group(1)
                break
    if not eid:
        try:
            from pyspark import TaskContext

            if TaskContext.get() is None:
                eid = "driver"
        except ImportError:
            eid = "driver"
    if not eid:
        local_dirs = os.environ.get("SPARK_LOCAL_DIRS", "")
        m = re.search(r"blockmgr-([0-9a-f]{8})", local_dirs)
        eid = f"blockmgr-{m.group(1)}" if m else f"pid-{os.getppid()}"
    return eid, cores


def _executor_jvm_args() -> tuple[str | None, int | None]:
    """``--executor-id`` and ``--cores`` from the executor JVM's command line (Linux /proc), looking
    a few processes up from this worker (worker <- daemon <- JVM)."""
    pid = os.getpid()
    for _ in range(4):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                pid = int(fh.read().rsplit(b")", 1)[1].split()[1])  # the parent's pid
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = [a.decode(errors="replace") for a in fh.read().split(b"\0")]
        except (OSError, ValueError, IndexError):
            return None, None
        if any(a.endswith("CoarseGrainedExecutorBackend") for a in args):
            found = {k: args[i + 1] for i, k in enumerate(args[:-1]) if k in ("--executor-id", "--cores")}
            cores = found.get("--cores", "")
            return found.get("--executor-id"), int(cores) if cores.isdigit() else None
        if pid <= 1:
            break
    return None, None


def _files_root() -> str | None:
    try:
        from pyspark import SparkFiles

        return SparkFiles.getRootDirectory()
    except Exception:
        return None


def probe_slots(pause: float, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n, numPartitions=n)``: one row per task with the executor it ran
    on, that executor's cores and CPUs per task where known, and when the task started and ended
    (tasks pause a moment, so that concurrent ones overlap)."""
    import time

    import pyarrow as pa
    from pyspark import TaskContext

    for _ in ids:
        pass
    start = time.time()
    time.sleep(pause)
    eid, cores = _executor_facts()
    tc = TaskContext.get()
    task_cpus = tc.cpus() if tc is not None and hasattr(tc, "cpus") else 1
    yield pa.RecordBatch.from_pydict(
        {
            "executor": [f"{socket.gethostname()}/{eid}"],
            "cores": [cores or 0],
            "task_cpus": [task_cpus or 1],
            "start": [start],
            "end": [time.time()],
        }
    )


#: Schema of :func:`probe_slots`'s rows.
PROBE_SCHEMA = "executor string, cores int, task_cpus int, start double, end double"


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
    root = _files_root()
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
) -> Iterator[tuple[int, str, Any]]:
    """The outcomes ``(key, status, (value, output, where))`` of this worker's exec_job tasks:
    task t runs calls [t*chunk, (t+1)*chunk); with ``once_tag`` the first task on each executor
    runs one call and the others nothing. With ``stop``, the first failing call ends the job."""
    for task in tasks:
        if once_tag is not None:
            if _claim_executor(once_tag):
                _, status, value, output = run_call(batch, 0)
                yield (task, status, (value, output, _executor_id()))
            continue
        if stop is not None:
            earlier = _stopped_before(stop)
            if earlier is not None:
                if stop.raise_:
                    raise StopJob(*earlier)
                return
        host = _host()
        for index, status, value, output in run_calls(batch, range(task * chunk, min(n_calls, (task + 1) * chunk))):
            if stop is not None and status == ERROR:
                _write_stop(stop.tag, index, value)
                if stop.raise_:
                    raise StopJob(index, value)
                yield (index, status, (value, output, host))
                return
            yield (index, status, (value, output, host))
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


def _pickled(outcome: tuple[int, str, Any], limit: int | None) -> tuple[int, str, bytes]:
    key, status, value = outcome
    try:
        return (key, *checked_payload(status, value, limit))
    except Exception as err:
        return (key, ERROR, _serde.dumps_result((_error_info(err, "pickling the result"), None, _host())))


def rdd_exec_tasks(
    batch_bytes: bytes,
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: StopPolicy | None,
    tasks: Iterator[int],
) -> Iterator[tuple[int, str, bytes]]:
    """Classic Spark: mapPartitions over the task numbers; results travel as pickled bytes."""
    batch: CallBatch = _serde.loads(batch_bytes)
    for outcome in exec_records(batch, tasks, chunk, n_calls, once_tag, stop):
        yield _pickled(outcome, batch.result_limit)


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
    yield from _emit_many(_pickled(o, batch.result_limit) for o in outcomes)


def _emit_many(outcomes: Iterable[tuple[int, str, bytes]]) -> Iterator[pa.RecordBatch]:
    """Result rows for many pickled outcomes, flushed every ~PART_BYTES."""
    import pyarrow as pa

    cols: dict[str, list[Any]] = {"split": [], "part": [], "nparts": [], "status": [], "payload": []}
    size = 0
    for key, status, payload in outcomes:
        parts = _serde.split_parts(payload)
        for i, part in enumerate(parts):
            for name, value in zip(cols, (key, i, len(parts), status, part), strict=True):
                cols[name].append(value)
            size += len(part)
            if size >= _serde.PART_BYTES:
                yield pa.RecordBatch.from_pydict(cols, schema=_result_arrow_schema())
                cols = {name: [] for name in cols}
                size = 0
    if cols["split"]:
        yield pa.RecordBatch.from_pydict(cols, schema=_result_arrow_schema())


def _claim_executor(tag: str) -> bool:
    """True for the first task of job ``tag`` on this executor (an O_EXCL marker named after the
    executor, in its files directory)."""
    from pyspark import SparkFiles

    marker = os.path.join(SparkFiles.getRootDirectory(), f".sparkdist-once-{tag}-{_executor_facts()[0]}")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True
