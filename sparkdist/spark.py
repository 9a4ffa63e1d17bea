"""SparkComputeContext: run work on the executors of a Spark session, classic or Spark Connect."""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.resources
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sparkdist import _compat, _reduce, _serde, _worker
from sparkdist.context import DEFAULT_MAX_RESULT_SIZE, ComputeContext, _active_tag
from sparkdist.errors import (
    ArgumentTypeError,
    ComputeContextError,
    DataSourceError,
    InvalidArgumentError,
    JobError,
    ResultTooLargeError,
    SessionStoppedError,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sparkdist._worker import Outcome
    from sparkdist.sources import DataSource

__all__ = ["SparkComputeContext"]

log = logging.getLogger("sparkdist")


class SparkComputeContext(ComputeContext):
    """Run work on the executors of a Spark session (RevoScaleR's ``RxSpark``).

    Wraps an existing SparkSession (classic or Spark Connect), or builds one on first use:
    ``remote="sc://host:port"`` or ``remote="local[2]"`` gives Spark Connect; otherwise classic
    Spark with ``master`` (default ``local[*]``). For local masters it points ``PYSPARK_PYTHON``
    at the running interpreter (unless already set) and binds Spark to 127.0.0.1.

    Parameters
    ----------
    session : SparkSession, optional
        A session to wrap. Not to be combined with ``master`` / ``remote`` / resources.
    master, remote : str, optional
        Where to build a session (mutually exclusive).
    app_name : str
        Application name of a built session.
    num_executors, executor_cores : int, optional
        ``spark.executor.instances`` / ``spark.executor.cores`` of a built session.
    executor_memory : str, optional
        ``spark.executor.memory`` of a built session, e.g. ``"4g"``.
    spark_config : mapping, optional
        Further Spark settings of a built session.
    ship_package : bool, optional
        Ship sparkdist's own code to the executors (a small zip, once per session), so that they
        need not have it installed. Default (None): yes. False when they surely have this very version.
    task_slots : int, optional
        How many tasks the cluster runs at once, used to size splits and batches of calls.
        Default: detected from the cluster (see :attr:`task_slots`).
    wait : bool
        Whether calls block by default (see :class:`ComputeContext`).
    max_result_size : int, str or None
        The most one job's results may add up to on the driver (default ``"1g"``); see
        :class:`ComputeContext`. Spark's own ``spark.driver.maxResultSize`` applies as well.

    Examples
    --------
    >>> ctx = SparkComputeContext(master="local[2]")   # no session is started yet
    >>> ctx.is_distributed, ctx.is_connect
    (True, False)
    """

    def __init__(
        self,
        session: SparkSession | None = None,
        *,
        master: str | None = None,
        remote: str | None = None,
        app_name: str = "sparkdist",
        num_executors: int | None = None,
        executor_cores: int | None = None,
        executor_memory: str | None = None,
        spark_config: Mapping[str, Any] | None = None,
        ship_package: bool | None = None,
        task_slots: int | None = None,
        wait: bool = True,
        max_result_size: int | str | None = DEFAULT_MAX_RESULT_SIZE,
    ) -> None:
        self._init_settings(wait, max_result_size)
        _require_pyspark(classic=session is None and remote is None, connect=remote is not None)
        if task_slots is not None and (
            not isinstance(task_slots, int) or isinstance(task_slots, bool) or task_slots < 1
        ):
            raise InvalidArgumentError(
                f"task_slots must be a positive int (how many tasks the cluster runs at once) or None to "
                f"detect it, got {task_slots!r}"
            )
        if session is not None and not _compat.is_spark_session(session):
            raise ArgumentTypeError(f"session must be a pyspark SparkSession, got {type(session).__name__}")
        building = [n for n, v in (("master", master), ("remote", remote), ("num_executors", num_executors),
                                   ("executor_cores", executor_cores), ("executor_memory", executor_memory),
                                   ("spark_config", spark_config)) if v is not None]  # fmt: skip
        if session is not None and building:
            raise InvalidArgumentError(
                f"pass either session or the settings to build one, not both (got session and {', '.join(building)})"
            )
        if master is not None and remote is not None:
            raise InvalidArgumentError("pass master (classic Spark) or remote (Spark Connect), not both")
        for name, value in (
            ("master", master),
            ("remote", remote),
            ("app_name", app_name),
            ("executor_memory", executor_memory),
        ):
            if value is not None and (not isinstance(value, str) or not value):
                raise ArgumentTypeError(f"{name} must be a non-empty str, got {value!r}")
        for name, count in (("num_executors", num_executors), ("executor_cores", executor_cores)):
            if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
                raise InvalidArgumentError(f"{name} must be a positive int, got {count!r}")
        if spark_config is not None and not isinstance(spark_config, Mapping):
            raise ArgumentTypeError(
                f"spark_config must be a mapping of setting names to values, got {type(spark_config).__name__}"
            )
        if ship_package is not None and not isinstance(ship_package, bool):
            raise ArgumentTypeError(f"ship_package must be True, False or None, got {ship_package!r}")
        self._session = session
        self._master, self._remote, self._app_name = master, remote, app_name
        self._resources = {
            "spark.executor.instances": num_executors,
            "spark.executor.cores": executor_cores,
            "spark.executor.memory": executor_memory,
        }
        self._spark_config = dict(spark_config or {})
        self._ship_package = ship_package
        self._owns_session = False
        self._shipped_to: set[str] = set()
        self._engines: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()
        self._task_slots = task_slots
        self._probed_slots: tuple[int, float] | None = None  # (slots, when) for Connect servers
        self._probed_executors = 0

    # -- the session ----------------------------------------------------------------------------

    @property
    def session(self) -> SparkSession:
        """The SparkSession (built on first access when the context builds its own)."""
        with self._lock:
            if self._session is None:
                self._session = self._build()
            return self._session

    @property
    def is_connect(self) -> bool:
        """True for Spark Connect."""
        if self._session is not None:
            return _compat.is_connect(self._session)
        return self._remote is not None

    @property
    def is_distributed(self) -> bool:
        return True

    @property
    def task_slots(self) -> int:
        """How many tasks the cluster runs at once: the ``task_slots`` given to the constructor, else
        what the cluster has now (classic: the scheduler's executors and cores, read for every job;
        a Spark Connect server on a cluster: a short probe job, repeated when older than
        :data:`SLOTS_PROBE_TTL` seconds)."""
        if self._task_slots is not None:
            return self._task_slots
        session = self.session
        known = _compat.task_slots(session)
        if known is not None:
            return known
        with self._lock:
            probed = self._probed_slots
        if probed is None or time.monotonic() - probed[1] > SLOTS_PROBE_TTL:
            probed = (self._probe_slots(session), time.monotonic())
            with self._lock:
                self._probed_slots = probed
        return probed[0]

    def _probe_slots(self, session: SparkSession) -> int:
        """Run a short job of many tasks and count what ran them: the cores of each executor seen (from
        its command line) and, as a floor, how many tasks ran at the same time."""
        self._ensure_shipped(session)
        rows: list[Any] = []
        n_tasks = 64
        try:
            for _ in range(3):  # more tasks while every one found a slot of its own (a bigger cluster)
                probe = functools.partial(_worker.probe_slots, 0.05)
                df = session.range(0, n_tasks, 1, numPartitions=n_tasks).mapInArrow(probe, _worker.PROBE_SCHEMA)
                rows = df.collect()
                slots = _slots_from_probe(rows)
                self._probed_executors = len({row.executor for row in rows})
                if slots < n_tasks // 2 or n_tasks >= 4096:
                    return slots
                n_tasks *= 4
            return _slots_from_probe(rows)
        except Exception as err:
            log.warning("sparkdist: could not count the cluster's task slots (%s); assuming 2", _first_line(err))
            return 2

    def check_usable(self) -> None:
        if self._session is not None and _compat.is_stopped(self._session):
            raise SessionStoppedError(
                f"the SparkSession of {self!r} has been stopped; create a new SparkComputeContext "
                "(or a new session) to run more work"
            )

    def _build(self) -> SparkSession:
        from pyspark.sql import SparkSession

        target = self._remote or self._master or "local[*]"
        local = (self._remote is None and _compat.is_local_master(target)) or (
            self._remote is not None and not self._remote.startswith("sc://")
        )
        if self._remote is not None and not local:
            check_reachable(self._remote)
        builder = SparkSession.builder.remote(self._remote) if self._remote else SparkSession.builder.master(target)
        builder = builder.appName(self._app_name)
        if local:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        if not self._remote:  # sparkdist draws its own progress bars: no second one from Spark's console
            builder = builder.config("spark.ui.showConsoleProgress", "false")
        for key, value in self._resources.items():
            if value is not None:
                builder = builder.config(key, str(value))
        for key, value in self._spark_config.items():
            builder = builder.config(str(key), str(value).lower() if isinstance(value, bool) else str(value))
        before = _compat.active_session()
        with warnings.catch_warnings():
            # Connect re-applies builder settings at runtime and warns that static ones (already
            # given to the local server at start-up) cannot be modified: expected, not news.
            warnings.filterwarnings(
                "ignore", message=r"Failed to set spark\..*CANNOT_MODIFY_CONFIG", category=UserWarning
            )
            session = builder.getOrCreate()
        self._owns_session = session is not before
        log.info(
            "sparkdist: using %s Spark session (%s)",
            "a Connect" if _compat.is_connect(session) else "a classic",
            target,
        )
        return session

    def stop(self) -> None:
        """Stop the session, only if this context created it."""
        with self._lock:
            if self._session is not None and self._owns_session:
                self._session.stop()

    # -- shipping sparkdist to executors ----------------------------------------------------------

    def _ensure_shipped(self, session: SparkSession) -> None:
        key = str(getattr(session, "session_id", id(session)))
        if key in self._shipped_to or self._ship_package is False:
            return
        path = package_zip()
        try:
            _compat.ship_python_file(session, path)
        except Exception as err:  # already added (same file, same session) is fine
            if "already" not in str(err).lower() and "exist" not in str(err).lower():
                raise
        self._shipped_to.add(key)

    # -- running splits ---------------------------------------------------------------------------

    def _run_splits(
        self, task_bytes: bytes, task: _worker.SplitTask, source: DataSource, reduce_bytes: bytes | None
    ) -> list[Outcome]:
        from sparkdist.sources import LocalSplit, PandasData, ParquetData, SparkData, spark_reader_error

        session = self.session
        self.check_usable()
        self._ensure_shipped(session)
        self._check_cancelled()
        n_splits: int | None
        splits: list[LocalSplit] | None = None
        if isinstance(source, SparkData):
            if not source.is_compatible_with(session):
                raise DataSourceError(
                    "the DataFrame belongs to another SparkSession than the compute context's; "
                    "create it from the context's session, or pass compute_context for its session"
                )
            frame: DataFrame | None = source.frame()
        elif isinstance(source, ParquetData) and self._parquet_engine(session, source) == "spark":
            try:
                frame = source.spark_frame(session)  # classic Spark lists the files here
                if _compat.is_connect(session):
                    _ = frame.schema  # Connect analyses lazily: a bad path fails here, not as a job failure
            except Exception as err:
                if not _is_spark_error(err):
                    raise
                raise spark_reader_error(source.paths, err) from err
        elif isinstance(source, (ParquetData, PandasData)):
            splits = source.local_splits(self.task_slots)
            frame = None
        else:  # pragma: no cover - as_data_source only makes the kinds above
            raise ArgumentTypeError(f"unsupported data source {source!r}")

        _compat.set_job_description(session, f"sparkdist: {getattr(task.func, '__qualname__', 'func')}")
        try:
            if frame is not None:
                mapped = frame.mapInArrow(functools.partial(_worker.spark_map_frame, task_bytes), _worker.RESULT_SCHEMA)
                n_splits = _compat.known_partitions(frame) if reduce_bytes is not None else None
            else:
                assert splits is not None
                if not splits:
                    return []
                n_splits = len(splits)
                splits_bytes = _serde.dumps(splits)
                size = _reduce.group_size(n_splits)
                n_groups = -(-n_splits // size)
                if reduce_bytes is not None and 1 < n_groups < n_splits and n_groups >= self.task_slots:
                    # enough groups to fill every slot: each task reads and folds its own group
                    self._plan_units(n_splits, size)
                    fold = functools.partial(
                        _worker.spark_map_fold_groups, task_bytes, splits_bytes, reduce_bytes, size, n_splits
                    )
                    grouped = session.range(0, n_groups, 1, numPartitions=n_groups).mapInArrow(
                        fold, _worker.RESULT_SCHEMA
                    )
                    return _reduce.collect_outcomes(grouped, self.max_result_size)
                self._plan_units(n_splits)
                ids = session.range(0, n_splits, 1, numPartitions=n_splits)
                func = functools.partial(_worker.spark_map_splits, task_bytes, splits_bytes)
                mapped = ids.mapInArrow(func, _worker.RESULT_SCHEMA)
            if reduce_bytes is None:
                return _reduce.collect_outcomes(mapped, self.max_result_size)
            return _reduce.tree_reduce(mapped, n_splits, reduce_bytes, self.max_result_size, self.task_slots)
        except ResultTooLargeError:
            self._stop_rest(session)
            raise
        except Exception as err:
            if _is_spark_error(err):
                raise spark_failure(err) from None
            raise

    def _run_calls(
        self, batch_bytes: bytes, batch: _worker.CallBatch, n_calls: int, chunk: int, once: bool
    ) -> list[tuple[int, str, Any, str | None, str]]:
        session = self.session
        self.check_usable()
        self._ensure_shipped(session)
        self._check_cancelled()
        _compat.set_job_description(session, f"sparkdist exec_job: {getattr(batch.func, '__qualname__', 'func')}")
        if not once:
            self._plan_units(n_calls, chunk)
            return self._calls_job(session, batch_bytes, batch, n_calls, chunk, -(-n_calls // chunk), None)
        # One call on each executor: more tasks than slots, the first task on each executor runs the call
        # (it claims the executor with a marker named after the job). An executor still busy with other
        # work may get none; another round of the same job then reaches those (the served ones skip).
        once_tag, expected = uuid.uuid4().hex, self._executor_count(session)
        records: list[tuple[int, str, Any, str | None, str]] = []
        for _ in range(5):
            records += self._calls_job(session, batch_bytes, batch, 1, 1, 2 * self.task_slots, once_tag)
            if len({r[4] for r in records}) >= expected:
                break
        return records

    def _calls_job(
        self,
        session: SparkSession,
        batch_bytes: bytes,
        batch: _worker.CallBatch,
        n_calls: int,
        chunk: int,
        n_tasks: int,
        once_tag: str | None,
    ) -> list[tuple[int, str, Any, str | None, str]]:
        """One Spark job running exec_job's calls: ``n_tasks`` tasks of ``chunk`` calls each."""
        connect = _compat.is_connect(session)
        stop = _worker.StopPolicy(uuid.uuid4().hex, raise_=not connect) if batch.stop_on_failure else None
        watcher = _StopWatcher(session, _active_tag.get()) if stop is not None and stop.raise_ else None
        try:
            if connect:
                func = functools.partial(_worker.spark_exec_tasks, batch_bytes, chunk, n_calls, once_tag, stop)
                mapped = session.range(0, n_tasks, 1, numPartitions=n_tasks).mapInArrow(func, _worker.RESULT_SCHEMA)
                outcomes = _reduce.collect_outcomes(
                    mapped, self.max_result_size, "call", until_error=batch.stop_on_failure
                )
                if batch.stop_on_failure and any(status == _worker.ERROR for _, status, _ in outcomes):
                    self._stop_rest(session)  # the first failure ends the job: stop the tasks still running
            else:  # classic: an RDD of task numbers skips SQL planning, the cheapest job Spark has
                part = functools.partial(_worker.rdd_exec_tasks, batch_bytes, chunk, n_calls, once_tag, stop)
                rows = session.sparkContext.parallelize(range(n_tasks), n_tasks).mapPartitions(part).collect()
                outcomes = _reduce.assemble(
                    ((key, 0, 1, status, payload) for key, status, payload in rows), self.max_result_size, "call"
                )
        except ResultTooLargeError:
            self._stop_rest(session)
            raise
        except Exception as err:
            if not _is_spark_error(err):
                raise
            stopped = (watcher.stopped if watcher is not None else None) or _worker.parse_stop(str(err))
            if stopped is None:
                raise spark_failure(err) from None
            index, info = stopped  # continue_on_failure=False: the job was cancelled at the first failure
            return [(index, _worker.ERROR, info, None, info["host"])]
        finally:
            if watcher is not None:
                watcher.close()
        return [(index, status, value, output, where) for index, status, (value, output, where) in outcomes]

    def _executor_count(self, session: SparkSession) -> int:
        """How many executors run tasks (1 for local masters, where the driver runs them)."""
        known = _compat.executor_count(session)
        if known is not None:
            return known
        _ = self.task_slots  # a Connect server on a cluster: the slots probe counts the executors too
        return self._probed_executors or 1

    def _stop_rest(self, session: SparkSession) -> None:
        """After a refused result: stop what the job still runs (Connect streams results, so
        its query may still be going)."""
        tag = _active_tag.get()
        if tag is not None:
            with contextlib.suppress(Exception):
                _compat.interrupt_tag(session, tag)

    def _parquet_engine(self, session: SparkSession, source: Any) -> str:
        """ "arrow" when the driver and the executors can open the files with pyarrow, else "spark"
        (engine="auto"); the reason for a fallback is logged once per context and path. When neither
        pyarrow on the driver nor Spark's reader can open the path, a DataSourceError names both."""
        if source.engine != "auto":
            return str(source.engine)
        key = tuple(source.paths)
        if key not in self._engines:
            failure = source.arrow_failure()
            if failure is not None:
                source._schema_in(self)  # Spark's reader must open it, or the error names both attempts
                ok, reason = False, f"pyarrow cannot open it on the driver ({failure})"
            elif not _compat.executors_share_filesystem(session):
                ok, reason = self._probe_executors(session, source)
            else:
                ok, reason = True, ""
            self._engines[key] = "arrow" if ok else "spark"
            if not ok:
                log.warning(
                    "sparkdist: reading %s with Spark's reader, not pyarrow: %s", ", ".join(source.paths), reason
                )
        return self._engines[key]

    def _probe_executors(self, session: SparkSession, source: Any) -> tuple[bool, str]:
        """One tiny job: can an executor open the source's first files with pyarrow?"""
        disc = source._discover()
        paths = [f.path for f in disc.files[:2]]
        probe = functools.partial(_worker.probe_files, disc.filesystem, paths)
        try:
            row = session.range(0, 1, 1, numPartitions=1).mapInArrow(probe, "ok boolean, reason string").collect()[0]
        except Exception as err:  # the probe itself failed (for example sparkdist missing there)
            from sparkdist.sources import _one_line

            return False, f"the probe job failed: {_one_line(err)}"
        return bool(row.ok), str(row.reason)

    # -- jobs: tags, cancel, progress ------------------------------------------------------------

    @contextlib.contextmanager
    def _job_scope(self, tag: str, description: str) -> Iterator[None]:
        """Spark operations in the block carry job tag ``tag`` (thread-local, classic and Connect).
        The thread's Spark settings that jobs change (description, interrupt-on-cancel, tags) and
        the Connect progress handler are put back as found when the block ends."""
        session = self.session
        saved = _compat.save_local_properties(session)
        _compat.add_tag(session, tag)
        handler = _watch_connect_progress(session, tag)
        try:
            with super()._job_scope(tag, description):
                yield
        finally:
            with contextlib.suppress(Exception):
                _compat.remove_tag(session, tag)
            with contextlib.suppress(Exception):
                _compat.restore_local_properties(session, saved)
            if handler is not None:
                with contextlib.suppress(Exception):
                    session.removeProgressHandler(handler)  # type: ignore[arg-type]

    def _cancel(self, tag: str) -> None:
        super()._cancel(tag)
        if self._session is not None and not _compat.is_stopped(self._session):
            _compat.interrupt_tag(self._session, tag)

    def _release(self, tag: str) -> tuple[int, int] | None:
        final = self._progress(tag)
        super()._release(tag)
        _connect_progress.pop(tag, None)
        return final

    def _progress(self, tag: str) -> tuple[int, int]:
        """(splits or calls done, in all): Spark's tasks of the job's first stage, counted in the splits
        or calls each task runs when the job said how many (see ``_plan_units``)."""
        if self._session is None or _compat.is_stopped(self._session) or _compat.is_connect(self._session):
            done, total = _connect_progress.get(tag, (0, 0))
        else:
            done, total = _compat.tag_progress(self._session, tag)
        plan = self._units.get(tag)
        if plan is None:
            return done, total
        units, per_task = plan
        return min(units, done * per_task), units

    def __repr__(self) -> str:
        if self._session is None:
            return f"SparkComputeContext({'remote' if self._remote else 'master'}={self._remote or self._master or 'local[*]'!r})"
        kind = "Spark Connect" if _compat.is_connect(self._session) else "classic"
        return f"SparkComputeContext(<{kind} session>)"


class _StopWatcher:
    """Classic Spark, ``continue_on_failure=False``: watches the failed tasks of job ``tag`` and
    cancels the job as soon as one failed on a user error (a :class:`sparkdist._worker.StopJob`),
    so that Spark neither retries the call nor runs the job's other tasks on."""

    def __init__(self, session: SparkSession, tag: str | None, interval: float = 0.05) -> None:
        self.session, self.tag, self.interval = session, tag, interval
        self.stopped: tuple[int, _worker.ErrorInfo] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"{tag}-stop-watch", daemon=True)
        if tag is not None:
            self._thread.start()

    def _watch(self) -> None:
        assert self.tag is not None
        while not self._done.wait(self.interval):
            for message in _compat.failed_task_messages(self.session, self.tag):
                found = _worker.parse_stop(message)
                if found is not None:
                    self.stopped = found
                    with contextlib.suppress(Exception):
                        _compat.interrupt_tag(self.session, self.tag)
                    return

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


_connect_progress: dict[str, tuple[int, int]] = {}  # job tag -> (tasks done, tasks total), Connect


def _watch_connect_progress(session: SparkSession, tag: str) -> Callable[..., None] | None:
    """Spark Connect reports stage progress to registered handlers, in the thread that runs the
    operation: count it for job ``tag`` while this thread runs it. Returns the handler to remove."""
    if not _compat.is_connect(session) or not hasattr(session, "registerProgressHandler"):
        return None
    thread = threading.get_ident()

    def handler(stages: Any, inflight_tasks: int, operation_id: str | None, done: bool, **_: Any) -> None:
        # the first stage of the operation runs the user's function; later ones reduce
        if threading.get_ident() != thread or not stages:
            return
        first = min(stages, key=lambda st: int(getattr(st, "stage_id", 0)))
        _connect_progress[tag] = (int(getattr(first, "num_completed_tasks", 0)), int(getattr(first, "num_tasks", 0)))

    session.registerProgressHandler(handler)  # type: ignore[arg-type]  # a plain function serves
    return handler


def _is_spark_error(err: BaseException) -> bool:
    mod = type(err).__module__
    return mod.startswith(("pyspark", "py4j", "grpc"))


_PY_TRACE = re.compile(r"Traceback \(most recent call last\):.*?(?=\n\s*at |\n\n|\Z)", re.S)


_MAX_RESULT = re.compile(
    r"Total size of serialized results of (\d+) tasks \(([^)]*)\) is bigger than "
    r"spark\.driver\.maxResultSize \(([^)]*)\)"
)


def spark_failure(err: BaseException) -> JobError | ResultTooLargeError:
    """A Spark/Py4J failure outside the user's code, condensed to what a user can act on.

    >>> spark_failure(RuntimeError("Job aborted due to stage failure: Total size of serialized results "
    ...     "of 3 tasks (1100.0 MiB) is bigger than spark.driver.maxResultSize (1024.0 MiB)")).setting
    'spark.driver.maxResultSize'
    """
    text = str(err)
    limit = _MAX_RESULT.search(text)
    if limit is not None:
        tasks, size, cap = limit.groups()
        return ResultTooLargeError(
            f"the results of {tasks} Spark tasks ({size}) passed Spark's spark.driver.maxResultSize ({cap}); "
            "the job was stopped. Return less from each call, combine results on the executors (distribute_job's "
            "reduce=), or raise spark.driver.maxResultSize when the session is created (it cannot change later).",
            setting="spark.driver.maxResultSize",
        )
    match = _PY_TRACE.search(text)
    trace = match.group(0) if match else ""
    last = (
        trace.strip().splitlines()[-1]
        if trace
        else text.strip().splitlines()[0]
        if text.strip()
        else type(err).__name__
    )
    remote_type, _, remote_message = last.partition(": ")
    return JobError(
        f"the Spark job failed: {last[:500]}"
        + (f"\nLast frames of the worker traceback:\n{_tail(trace)}" if trace else ""),
        remote_type=remote_type if remote_message else type(err).__name__,
        remote_message=remote_message or last,
        remote_traceback=trace or text[:5000],
    )


def _tail(trace: str, lines: int = 12) -> str:
    return "\n".join(trace.strip().splitlines()[-lines:])


def check_reachable(url: str, timeout: float = 10.0) -> None:
    """Raise ComputeContextError, naming ``url``, when nothing accepts connections at a Spark Connect
    URL (``sc://host:port/;params``); pyspark itself would retry for minutes before saying so.

    >>> check_reachable("sc://127.0.0.1:1")
    Traceback (most recent call last):
    ...
    sparkdist.errors.ComputeContextError: cannot reach the Spark Connect server at sc://127.0.0.1:1 (127.0.0.1:1): ConnectionRefusedError: [Errno 111] Connection refused. Check that the server runs and the host and port are right (the default port is 15002).
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url.split(";", 1)[0])
    host, port = parts.hostname or "localhost", parts.port or 15002
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ComputeContextError(
            f"cannot reach the Spark Connect server at {url} ({host}:{port}): {type(err).__name__}: {err}. "
            "Check that the server runs and the host and port are right (the default port is 15002)."
        ) from err


#: Seconds after which a Spark Connect server's task slots are probed again (executors come and go).
SLOTS_PROBE_TTL = 60.0


def _slots_from_probe(rows: list[Any]) -> int:
    """Task slots from :func:`sparkdist._worker.probe_slots` rows: the cores of every executor seen,
    divided by CPUs per task, or at least the most tasks seen running at once."""
    per_executor: dict[str, int] = {}
    for row in rows:
        if row.cores:
            per_executor[row.executor] = max(per_executor.get(row.executor, 0), row.cores // max(1, row.task_cpus))
    events = sorted([(r.start, 1) for r in rows] + [(r.end, -1) for r in rows])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return max(1, sum(per_executor.values()), most)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300] if text else ''}"


_zip_lock = threading.Lock()
_zip_path: str | None = None


def package_zip() -> str:
    """A zip of this sparkdist package (built once per process, in a directory private to the user).

    Works wherever sparkdist was imported from: a folder, or itself a zip or wheel on the path (as
    with ``spark-submit --py-files sparkdist.whl``)."""
    global _zip_path
    with _zip_lock:
        if _zip_path is None or not os.path.exists(_zip_path):
            files = sorted(_package_files(importlib.resources.files("sparkdist"), "sparkdist"))
            digest = hashlib.sha256()
            for name, data in files:
                digest.update(name.encode() + data)
            tmp = tempfile.mkdtemp(prefix="sparkdist-")  # mode 0700
            atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # nothing left in /tmp after exit
            path = os.path.join(tmp, f"sparkdist_{digest.hexdigest()[:12]}.zip")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in files:
                    zf.writestr(name, data)
            os.chmod(path, 0o600)
            _zip_path = path
        return _zip_path


def _package_files(folder: Any, prefix: str) -> Iterator[tuple[str, bytes]]:
    """(name in the zip, content) of the package's source files, from a folder or an archive."""
    for item in folder.iterdir():
        if item.is_dir():
            if item.name != "__pycache__":
                yield from _package_files(item, f"{prefix}/{item.name}")
        elif item.name.endswith(".py") or item.name == "py.typed":
            yield f"{prefix}/{item.name}", item.read_bytes()


def _require_pyspark(*, classic: bool, connect: bool) -> None:
    """Raise ComputeContextError, saying what to install, when this Python lacks the pyspark that a
    Spark context needs (classic: the full pyspark; Connect: pyspark with its Connect dependencies)."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise ComputeContextError(
            "SparkComputeContext needs pyspark, which is not installed: pip install 'sparkdist[spark]' "
            "(classic Spark) or 'sparkdist[connect]' (Spark Connect); the Local contexts need neither"
        )
    if connect and importlib.util.find_spec("grpc") is None:
        raise ComputeContextError(
            "Spark Connect needs pyspark's Connect dependencies (grpcio, ...), which are not installed: "
            "pip install 'sparkdist[connect]'"
        )
    if classic:
        try:
            from pyspark.util import is_remote_only  # pyspark >= 4.0
        except ImportError:
            return
        if is_remote_only():
            raise ComputeContextError(
                "this pyspark is the Spark Connect client only (pyspark-client), which cannot run classic "
                "Spark: pass remote='sc://host:port', or pip install 'sparkdist[spark]' for the full pyspark"
            )
