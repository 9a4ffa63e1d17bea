"""SparkComputeContext: run work on the executors of a Spark session, classic or Spark Connect.

- ``session``: building a session, and shipping sparkdist's code to its executors;
- ``running``: the Spark jobs that run splits, calls and probes;
- ``tracking``: progress and the first failure of a job, read without a listening socket;
- ``failures``: Spark's own failures condensed to what a user can act on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sparkdist import _compat, _compat_libs, _worker
from sparkdist._checks import check_optional_bool, check_positive_int, check_str, name_of
from sparkdist.context import (
    DEFAULT_MAX_RESULT_SIZE,
    CallWork,
    ComputeContext,
    GroupWork,
    SplitSource,
    SplitWork,
    active_tag,
)
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError, SessionStoppedError
from sparkdist.spark import running
from sparkdist.spark.failures import first_line
from sparkdist.spark.packages import Shipper
from sparkdist.spark.session import Recipe, build, package_zip, require_pyspark, select, ship
from sparkdist.spark.tracking import connect_progress, watch_connect_progress

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession

    from sparkdist._protocol import CallRecord, GroupRecord, Outcome

__all__ = ["SLOTS_PROBE_TTL", "SparkComputeContext", "package_zip"]

log = logging.getLogger("sparkdist")

#: Seconds after which a Spark Connect server's task slots are probed again (executors come and go).
SLOTS_PROBE_TTL = 60.0


class SparkComputeContext(ComputeContext):
    """Run work on the executors of a Spark session (RevoScaleR's ``RxSpark``).

    Wraps an existing SparkSession (classic or Spark Connect), or builds one on first use:
    ``remote="sc://host:port"`` or ``remote="local[2]"`` gives Spark Connect; otherwise classic
    Spark with ``master``. For local masters it points ``PYSPARK_PYTHON`` at the running
    interpreter (unless already set) and binds Spark to 127.0.0.1.

    Without ``session``, ``master`` or ``remote`` it selects what PySpark would: the session already
    active in the process (a notebook's ``spark``, a databricks-connect ``DatabricksSession``), else
    the Spark Connect server of ``SPARK_REMOTE`` or of ``spark.remote`` in spark-defaults.conf
    (``$SPARK_CONF_DIR``, else ``$SPARK_HOME/conf``), else classic Spark with the master Spark is
    configured with (``spark-submit --master``, ``spark.master``), ``local[*]`` by default.

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
    packages : list of str, optional
        Requirements (``"statsmodels>=0.14"``) the executors get for every job: the driver downloads
        wheels for the executors' Python and platform with pip, and ships those they lack as one archive
        (once per requirement set and session); packages installed there are not shadowed.
    requirements : str or path, optional
        A pip requirements file, shipped the same way.
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
        packages: Sequence[str] | None = None,
        requirements: str | os.PathLike[str] | None = None,
        wait: bool = True,
        max_result_size: int | str | None = DEFAULT_MAX_RESULT_SIZE,
    ) -> None:
        super().__init__(wait=wait, max_result_size=max_result_size)
        self._task_slots = check_positive_int(
            task_slots, "task_slots", hint=" (how many tasks the cluster runs at once) or None to detect it"
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
        for name, value in (("master", master), ("remote", remote), ("app_name", app_name),
                            ("executor_memory", executor_memory)):  # fmt: skip
            if value is not None:
                check_str(value, name)
        check_positive_int(num_executors, "num_executors")
        check_positive_int(executor_cores, "executor_cores")
        if spark_config is not None and not isinstance(spark_config, Mapping):
            raise ArgumentTypeError(
                f"spark_config must be a mapping of setting names to values, got {type(spark_config).__name__}"
            )
        self._ship_package = check_optional_bool(ship_package, "ship_package")
        if requirements is not None and not os.path.isfile(requirements):
            raise InvalidArgumentError(
                f"requirements must be a pip requirements file, got {requirements!r} (no such file)"
            )
        self._packages = Shipper(
            _compat_libs.requirements(packages, "packages"), None if requirements is None else os.fspath(requirements)
        )
        session, remote = select(session, master, remote, building)
        require_pyspark(classic=session is None and remote is None, connect=remote is not None)
        self._session = session
        self._recipe = Recipe(
            master,
            remote,
            app_name,
            {
                "spark.executor.instances": num_executors,
                "spark.executor.cores": executor_cores,
                "spark.executor.memory": executor_memory,
            },
            dict(spark_config or {}),
        )
        self._owns_session = False
        self._shipped_to: set[str] = set()
        self._reachable: dict[tuple[str, ...], tuple[bool, str]] = {}  # executors_can_open, per paths
        self._lock = threading.Lock()
        self._probed: tuple[int, int, float] | None = None  # (slots, executors, when): Connect servers

    # -- the session ----------------------------------------------------------------------------

    @property
    def session(self) -> SparkSession:
        """The SparkSession (built on first access when the context builds its own)."""
        with self._lock:
            if self._session is None:
                self._session, self._owns_session = build(self._recipe)
            return self._session

    @property
    def spark_session(self) -> SparkSession:
        return self.session

    @property
    def wrapped_session(self) -> SparkSession | None:
        """The session, if there is one yet (starts nothing)."""
        return self._session

    @property
    def is_connect(self) -> bool:
        """True for Spark Connect."""
        if self._session is not None:
            return _compat.is_connect(self._session)
        return self._recipe.remote is not None

    @property
    def is_distributed(self) -> bool:
        return True

    def check_usable(self) -> None:
        if self._session is not None and _compat.is_stopped(self._session):
            raise SessionStoppedError(
                f"the SparkSession of {self!r} has been stopped; create a new SparkComputeContext "
                "(or a new session) to run more work"
            )

    def stop(self) -> None:
        """Stop the session, only if this context created it."""
        with self._lock:
            if self._session is not None and self._owns_session:
                self._session.stop()

    def _ready(self) -> SparkSession:
        """The session, usable, with sparkdist shipped to its executors."""
        session = self.session
        self.check_usable()
        key = str(getattr(session, "session_id", id(session)))
        if key not in self._shipped_to and self._ship_package is not False:
            ship(session)
            self._shipped_to.add(key)
        self._packages.ensure(session, key, (), self._probe_target)
        self._check_cancelled()
        return session

    def check_packages(self, packages: tuple[str, ...]) -> None:
        """Nothing to check on the driver: the executors get them (:meth:`ship_packages`)."""

    def ship_packages(self, packages: tuple[str, ...]) -> None:
        session = self._ready()
        self._packages.ensure(session, str(getattr(session, "session_id", id(session))), packages, self._probe_target)

    def _probe_target(self) -> list[dict[str, Any]]:
        return self.run_on_executors(_worker.packages.target)

    @contextlib.contextmanager
    def persisted(self, frame: DataFrame, *, original: DataFrame) -> Iterator[DataFrame]:
        """``frame`` persisted (memory and disk) while the block runs, then released, also on error or
        cancellation; a DataFrame the user persisted already is read as it is, and the user's own
        DataFrame object is never persisted (a new one is, its storage level stays as found)."""
        from pyspark.storagelevel import StorageLevel

        if original.storageLevel != StorageLevel.NONE:
            yield frame
            return
        kept = (frame.select("*") if frame is original else frame).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            yield kept
        finally:
            kept.unpersist(blocking=True)

    # -- the cluster ------------------------------------------------------------------------------

    @property
    def task_slots(self) -> int:
        """How many tasks the cluster runs at once: the ``task_slots`` given to the constructor, else
        what the cluster has now (classic: the scheduler's executors and cores, read for every job;
        a Spark Connect server on a cluster: a short probe job, repeated when older than
        :data:`SLOTS_PROBE_TTL` seconds)."""
        if self._task_slots is not None:
            return self._task_slots
        known = _compat.task_slots(self.session)
        return known if known is not None else self._probe()[0]

    def _probe(self) -> tuple[int, int]:
        """(slots, executors) of a Connect server's cluster, probed again after SLOTS_PROBE_TTL seconds."""
        with self._lock:
            probed = self._probed
        if probed is None or time.monotonic() - probed[2] > SLOTS_PROBE_TTL:
            session = self._ready()
            try:
                slots, executors = running.probe_slots(session)
            except Exception as err:  # noqa: BLE001 - a failed probe must not fail the job: assume 2
                log.warning("sparkdist: could not count the cluster's task slots (%s); assuming 2", first_line(err))
                slots, executors = 2, 1
            probed = (slots, executors, time.monotonic())
            with self._lock:
                self._probed = probed
        return probed[0], probed[1]

    def _executor_count(self) -> int:
        """How many executors run tasks (1 for local masters, where the driver runs them)."""
        known = _compat.executor_count(self.session)
        return known if known is not None else self._probe()[1]

    def executors_can_open(self, filesystem: pafs.FileSystem, paths: list[str]) -> tuple[bool, str]:
        """Local masters share this machine's files; otherwise one tiny job asks an executor (once per
        context and paths)."""
        session = self._ready()
        if _compat.executors_share_filesystem(session):
            return True, ""
        key = tuple(paths)
        if key not in self._reachable:
            self._reachable[key] = running.probe_files(session, filesystem, paths)
        return self._reachable[key]

    def accepts(self, source: SplitSource) -> bool:
        return source.readable_on(self._session)

    # -- running ----------------------------------------------------------------------------------

    def _run(self, session: SparkSession) -> running.Run:
        return running.Run(session, self.task_slots, self.max_result_size, active_tag.get(), self._plan_units)

    def run_splits(self, work: SplitWork) -> list[Outcome]:
        session = self._ready()
        _compat.set_job_description(session, f"sparkdist: {name_of(work.task.func)}")
        return running.run_splits(self._run(session), work)

    def run_calls(self, work: CallWork) -> list[CallRecord]:
        session = self._ready()
        _compat.set_job_description(session, f"sparkdist exec_job: {name_of(work.batch.func)}")
        run = self._run(session)
        if not work.once:
            self._plan_units(work.n_calls, work.chunk)
            return running.calls_job(run, work, work.n_calls, work.chunk, -(-work.n_calls // work.chunk), None)
        # One call on each executor: more tasks than slots, the first task on each executor runs the call
        # (it claims the executor with a marker named after the job). An executor still busy with other
        # work may get none; another round of the same job then reaches those (the served ones skip).
        once_tag, expected = uuid.uuid4().hex, self._executor_count()
        records: list[CallRecord] = []
        for attempt in range(6):
            if attempt:
                time.sleep(0.25 * 2**attempt)  # give busy executors time to free a slot (0.5 s to 8 s)
            records += running.calls_job(run, work, 1, 1, 2 * run.slots, once_tag)
            if len({r.where for r in records}) >= expected:
                break
        return records

    def run_groups(self, work: GroupWork) -> list[GroupRecord] | None:
        session = self._ready()
        frame = work.source.shuffle_frame(session)
        if frame is None:
            return None
        _compat.set_job_description(session, f"sparkdist exec_by: {name_of(work.task.func)}")
        return running.groups_job(self._run(session), work, frame)

    # -- jobs: tags, cancel, progress ------------------------------------------------------------

    @contextlib.contextmanager
    def job_scope(self, tag: str, description: str) -> Iterator[None]:
        """Spark operations in the block carry job tag ``tag`` (thread-local, classic and Connect).
        The thread's Spark settings that jobs change (description, interrupt-on-cancel, tags) and
        the Connect progress handler are put back as found when the block ends."""
        session = self.session
        saved = _compat.save_local_properties(session)
        _compat.add_tag(session, tag)
        handler = watch_connect_progress(session, tag)
        try:
            with super().job_scope(tag, description):
                yield
        finally:
            with contextlib.suppress(Exception):
                _compat.remove_tag(session, tag)
            with contextlib.suppress(Exception):
                _compat.restore_local_properties(session, saved)
            if handler is not None:
                with contextlib.suppress(Exception):
                    session.removeProgressHandler(handler)  # type: ignore[arg-type]

    def cancel(self, tag: str) -> None:
        super().cancel(tag)
        if self._session is not None and not _compat.is_stopped(self._session):
            _compat.interrupt_tag(self._session, tag)

    def release(self, tag: str) -> tuple[int, int]:
        final = super().release(tag)
        connect_progress.pop(tag, None)
        return final

    def progress(self, tag: str) -> tuple[int, int]:
        """(splits or calls done, in all): Spark's tasks of the job's first stage, counted in the splits
        or calls each task runs when the job said how many."""
        if self._session is None or _compat.is_stopped(self._session) or _compat.is_connect(self._session):
            done, total = connect_progress.get(tag, (0, 0))
        else:
            done, total = _compat.tag_progress(self._session, tag)
        plan = self._units.get(tag)
        if plan is None:
            return done, total
        units, per_task = plan
        return min(units, done * per_task), units

    def __repr__(self) -> str:
        if self._session is None:
            where = self._recipe.remote or self._recipe.master or "local[*]"
            return f"SparkComputeContext({'remote' if self._recipe.remote else 'master'}={where!r})"
        kind = "Spark Connect" if _compat.is_connect(self._session) else "classic"
        return f"SparkComputeContext(<{kind} session>)"
