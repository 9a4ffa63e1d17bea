"""Pieces every worker-side function shares: the task record, error records, result rows, and what
this worker knows about the executor it serves.

Nothing here knows which engine runs it: an engine's entry points (``sparkdist.spark.tasks``) say
where a task runs with :func:`at`, and the functions below read it from :func:`place`."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sparkdist import _serde
from sparkdist._protocol import ErrorInfo, Outcome, Status, result_arrow_schema

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True)
class Place:
    """Where worker-side code runs, as the engine that runs it tells (Spark: its TaskContext and
    SparkFiles). The default: no engine's task (the driver's own process, a pool's worker process)."""

    partition: int = 0  # the task's partition, which is the split of a DataFrame mapped as it is
    stage: int | None = None  # None: not inside an engine's task
    attempt: int = 0  # 0 for a task's first attempt
    shared_dir: str | None = None  # a folder that the executor's tasks share (Spark: SparkFiles' root)
    task_cpus: int = 1

    @property
    def in_task(self) -> bool:
        return self.stage is not None


_place = Place()


def place() -> Place:
    """Where the code running now runs (see :class:`Place`)."""
    return _place


@contextlib.contextmanager
def at(where: Place) -> Iterator[None]:
    """The block runs in the task ``where`` describes (a worker process runs one task at a time)."""
    global _place
    before, _place = _place, where
    try:
        yield
    finally:
        _place = before


class SplitReader(Protocol):
    """A split as its worker reads it: chunk by chunk (sparkdist.sources' splits are such)."""

    def chunks(self) -> Iterator[pd.DataFrame]: ...


@dataclass(frozen=True)
class SplitTask:
    """What one call of the user's function needs, besides its data."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    chunked: bool
    result_limit: int | None = None  # the context's max_result_size: no one result may exceed it


#: What a user's function may raise that ends its call, not the worker: every Exception, sys.exit()
#: and, in a worker process, KeyboardInterrupt (in the caller's own process that is Ctrl-C: it stops
#: the job as Python does).
IN_WORKER: tuple[type[BaseException], ...] = (Exception, SystemExit, KeyboardInterrupt)
IN_PROCESS: tuple[type[BaseException], ...] = (Exception, SystemExit)


def user_failures(in_process: bool) -> tuple[type[BaseException], ...]:
    return IN_PROCESS if in_process else IN_WORKER


class ExitCalled(SystemExit):
    """``os._exit(n)`` called by the user's function in a worker process: it ends that call (reported
    as a SystemExit that names os._exit), not the worker, which would die without a word."""


_exit_guard = threading.local()
_real_exit: Callable[[int], Any] | None = None


def _guarded_exit(code: int) -> Any:
    if getattr(_exit_guard, "active", False) and getattr(_exit_guard, "pid", None) == os.getpid():
        raise ExitCalled(code)
    assert _real_exit is not None
    return _real_exit(code)  # a child the function forked, or code outside a user call: exit for real


@contextlib.contextmanager
def guard_exit(in_process: bool) -> Iterator[None]:
    """While a user call runs in a worker (not ``in_process``: there os._exit ends the caller's own
    process, as without sparkdist), ``os._exit`` in this process and thread raises :class:`ExitCalled`."""
    global _real_exit
    if in_process:
        yield
        return
    if _real_exit is None:
        _real_exit = os._exit
        os._exit = _guarded_exit  # type: ignore[assignment]
    before = getattr(_exit_guard, "active", False)
    _exit_guard.active, _exit_guard.pid = True, os.getpid()
    try:
        yield
    finally:
        _exit_guard.active = before


def _message(err: BaseException) -> str:
    if isinstance(err, ExitCalled):
        return f"the function called os._exit({err.code!r}), which would end the worker process running it"
    if isinstance(err, SystemExit):
        return f"the function called sys.exit({err.code!r}), which would end the process running it"
    if isinstance(err, KeyboardInterrupt):
        return "KeyboardInterrupt raised in the function"
    if isinstance(err, MemoryError) and not str(err):
        return "the worker ran out of memory (MemoryError)"
    return str(err)


def error_info(err: BaseException, where: str) -> ErrorInfo:
    """What a failed user call sends back: its exception's type, message and traceback, and where."""
    frames = traceback.format_exception(type(err), err, err.__traceback__)
    # Drop sparkdist's own frames so the user sees their code first.
    text = "".join(f for f in frames if f"sparkdist{os.sep}_worker{os.sep}" not in f)
    return ErrorInfo(
        type="SystemExit" if isinstance(err, ExitCalled) else type(err).__name__,
        message=_message(err),
        traceback=text,
        where=getattr(err, "_sparkdist_where", where),
        host=host(),
    )


@contextlib.contextmanager
def running_note(folder: str | None, what: str) -> Iterator[None]:
    """While the block runs, the file ``folder/<pid>`` says ``what`` (for the pool to name what a
    worker that died was running); nothing without a folder."""
    if folder is None or not what:
        yield
        return
    path = os.path.join(folder, str(os.getpid()))
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(what)
    except OSError:  # the note only improves an error message
        path = ""
    yield
    if not path:
        return
    with contextlib.suppress(OSError):
        os.remove(path)


def host() -> str:
    """This machine, process and (in an engine's task) stage and partition, for error messages."""
    here = place()
    if here.in_task:
        return f"{socket.gethostname()} (pid {os.getpid()}, stage {here.stage}, partition {here.partition})"
    return f"{socket.gethostname()} (pid {os.getpid()})"


def checked_payload(status: Status, value: Any, limit: int | None) -> tuple[Status, bytes]:
    """``value`` pickled to send to the driver; past ``limit`` bytes, only its size is sent."""
    payload = _serde.dumps_result(value)
    if limit is not None and len(payload) > limit:
        return Status.TOO_LARGE, _serde.dumps_result(len(payload))
    return status, payload


def unpicklable(err: BaseException, where: str) -> ErrorInfo:
    """The error sent back instead of a result of ``where`` that cannot be pickled."""
    info = error_info(err, where)
    info["message"] = f"the result of {where} cannot be pickled to send it back to the driver: {err}"
    return info


def emit(split: int, status: Status, value: Any, limit: int | None, where: str) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    try:
        status, payload = checked_payload(status, value, limit)
    except Exception as err:
        status, payload = Status.ERROR, _serde.dumps_result(unpicklable(err, where))
    parts = _serde.split_parts(payload)
    for i, part in enumerate(parts):
        yield pa.RecordBatch.from_pydict(
            {"split": [split], "part": [i], "nparts": [len(parts)], "status": [status], "payload": [part]},
            schema=result_arrow_schema(),
        )


def emit_outcome(outcome: Outcome, limit: int | None, where: str) -> Iterator[pa.RecordBatch]:
    """Result rows for one outcome (its pickled value cut into parts) of the function named ``where``."""
    return emit(*outcome, limit, where)


def executor_id() -> str:
    """This worker's executor, as "host/executor": Spark's executor id where it can be found."""
    return f"{socket.gethostname()}/{executor_facts()[0]}"


@functools.lru_cache(maxsize=1)
def executor_facts() -> tuple[str, int | None]:
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
        for folder in (os.getcwd(), files_root()):
            m = re.search(r"/app-[^/]+/(\d+)(?:/|$)", folder or "")
            if m:
                eid = m.group(1)
                break
    if not eid and not place().in_task:
        eid = "driver"
    if not eid:
        local_dirs = os.environ.get("SPARK_LOCAL_DIRS", "")
        m = re.search(r"blockmgr-([0-9a-f]{8})", local_dirs)
        eid = f"blockmgr-{m.group(1)}" if m else f"pid-{os.getppid()}"
    return eid, cores


def _executor_jvm_args() -> tuple[str | None, int | None]:
    """``--executor-id`` and ``--cores`` from the executor JVM's command line (Linux /proc)."""
    args = jvm_cmdline()
    if any(a.endswith("CoarseGrainedExecutorBackend") for a in args):
        found = {k: args[i + 1] for i, k in enumerate(args[:-1]) if k in ("--executor-id", "--cores")}
        cores = found.get("--cores", "")
        return found.get("--executor-id"), int(cores) if cores.isdigit() else None
    return None, None


@functools.lru_cache(maxsize=1)
def jvm_cmdline() -> tuple[str, ...]:
    """The command line of the JVM this Python worker serves (an executor's, or in local mode the
    driver's), looking a few processes up from this worker (worker <- daemon <- JVM; Linux /proc);
    empty when there is none."""
    pid = os.getpid()
    for _ in range(4):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                pid = int(fh.read().rsplit(b")", 1)[1].split()[1])  # the parent's pid
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = tuple(a.decode(errors="replace") for a in fh.read().split(b"\0"))
        except (OSError, ValueError, IndexError):
            return ()
        if os.path.basename(args[0]) == "java" or any(a.endswith("CoarseGrainedExecutorBackend") for a in args):
            return args
        if pid <= 1:
            break
    return ()


def files_root() -> str | None:
    """The folder that this executor's tasks share (Spark: its root for shipped files); None outside
    an engine's task."""
    return place().shared_dir


def emit_many(outcomes: Iterable[tuple[int, Status, bytes]]) -> Iterator[pa.RecordBatch]:
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
                yield pa.RecordBatch.from_pydict(cols, schema=result_arrow_schema())
                cols = {name: [] for name in cols}
                size = 0
    if cols["split"]:
        yield pa.RecordBatch.from_pydict(cols, schema=result_arrow_schema())
