"""The compute contexts that need no JVM: in this process (RevoScaleR's ``RxLocalSeq``) and in a
pool of worker processes on this machine (``RxLocalParallel``)."""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import copy
import dataclasses
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sparkdist import _reduce, _serde, _worker
from sparkdist._checks import check_positive_int
from sparkdist._protocol import CallRecord, Outcome, Status
from sparkdist.context import DEFAULT_MAX_RESULT_SIZE, CallWork, ComputeContext, SplitWork, active_tag
from sparkdist.errors import JobError, WorkerDiedError

__all__ = ["RENDEZVOUS_SECONDS", "LocalComputeContext", "LocalParallelComputeContext"]

#: The longest that a pool's workers wait for each other to run one probe each (run_on_executors).
RENDEZVOUS_SECONDS = 5.0


class LocalComputeContext(ComputeContext):
    """Runs in this process, one split after another; no JVM (RevoScaleR's ``RxLocalSeq``).

    >>> LocalComputeContext().is_distributed
    False
    """

    def __init__(self, *, wait: bool = True, max_result_size: int | str | None = DEFAULT_MAX_RESULT_SIZE) -> None:
        super().__init__(wait=wait, max_result_size=max_result_size)

    @property
    def is_distributed(self) -> bool:
        return False

    @property
    def task_slots(self) -> int:
        return 1

    @property
    def ships_work(self) -> bool:
        return False

    def run_splits(self, work: SplitWork) -> list[Outcome]:
        splits = work.source.plan(1)
        self._count(total=len(splits))
        outcomes = []
        task = dataclasses.replace(work.task, args=_own_copy(work.task.args), kwargs=_own_copy(work.task.kwargs))
        for i, split in enumerate(splits):
            self._check_cancelled()
            outcomes.append(_worker.run_split(task, i, split.chunks(), in_process=True))
            self._count(done=1)
        return outcomes

    def run_calls(self, work: CallWork) -> list[CallRecord]:
        where = _local_where()
        n = 1 if work.once else work.n_calls
        self._count(total=n)
        records = []
        b = work.batch
        batch = dataclasses.replace(b, args=_own_copy(b.args), kwargs=_own_copy(b.kwargs), elems=_own_copy(b.elems))
        for index, status, value, output in _worker.run_calls(batch, range(n), in_process=True):
            records.append(CallRecord(index, Status(status), value, output, where))
            self._count(done=1)
            self._check_cancelled()
        return records

    def __repr__(self) -> str:
        return "LocalComputeContext()"


class LocalParallelComputeContext(ComputeContext):
    """A pool of worker processes on this machine; no JVM (RevoScaleR's ``RxLocalParallel``).

    Parameters
    ----------
    n_workers : int, optional
        Number of worker processes; default: the number of CPUs.

    Notes
    -----
    The pool starts on first use and is kept for later jobs; :meth:`close` ends it (it also
    ends when the interpreter exits).

    Examples
    --------
    >>> LocalParallelComputeContext(2).task_slots
    2
    """

    def __init__(
        self,
        n_workers: int | None = None,
        *,
        wait: bool = True,
        max_result_size: int | str | None = DEFAULT_MAX_RESULT_SIZE,
    ) -> None:
        super().__init__(wait=wait, max_result_size=max_result_size)
        self.n_workers = check_positive_int(n_workers, "n_workers", hint=" or None") or os.cpu_count() or 1
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._submitting = threading.Lock()  # a job's units are submitted at once, as progress sees them
        self._futures: dict[str, list[tuple[concurrent.futures.Future[bytes], int]]] = {}  # with their units
        self._kills = 0  # pools ended by a cancel: other jobs' work on them is run again
        # a folder private to this user where each worker notes what it runs, to name it if it dies
        self._notes = tempfile.mkdtemp(prefix="sparkdist-pool-")
        weakref.finalize(self, shutil.rmtree, self._notes, ignore_errors=True)
        _live_pools.add(self)

    @property
    def is_distributed(self) -> bool:
        return False

    @property
    def task_slots(self) -> int:
        return self.n_workers

    def _get_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: safe next to a JVM and threads, unlike fork
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.n_workers, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def _submit(self, fn: Any, *args: Any, units: int = 1) -> concurrent.futures.Future[bytes]:
        """Submit to the pool, remembering the future under the current job (for cancel, and for progress
        in ``units``: the splits or calls it runs)."""
        self._check_cancelled()
        future = self._get_pool().submit(fn, *args)
        tag = active_tag.get()
        if tag is not None:
            self._futures.setdefault(tag, []).append((future, units))
        return future

    def progress(self, tag: str) -> tuple[int, int]:
        with self._submitting:
            futures = list(self._futures.get(tag, []))
        return sum(n for f, n in futures if f.done()), sum(n for _, n in futures)

    def release(self, tag: str) -> tuple[int, int]:
        final = super().release(tag)
        self._futures.pop(tag, None)  # they hold the job's pickled results
        return final

    def cancel(self, tag: str) -> None:
        """Drop the job's queued calls and end the worker processes running its others."""
        super().cancel(tag)
        futures = [f for f, _ in self._futures.get(tag, [])]
        if not any(f.running() for f in futures):
            for f in futures:
                f.cancel()
            return
        # Some are running: end the pool's workers. Its manager thread then fails every future of
        # the pool (running or queued) with BrokenProcessPool; cancelling them here first would make
        # it stumble on the cancelled ones. Other jobs' lost work is run again (see _run_units).
        with self._lock:
            pool, self._pool = self._pool, None
            self._kills += 1
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            # not cancel_futures: a future cancelled by shutdown never wakes an as_completed() waiting
            # on it; failing with BrokenProcessPool does
            pool.shutdown(wait=False)

    def close(self) -> None:
        """Shut the worker processes down."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def run_splits(self, work: SplitWork) -> list[Outcome]:
        splits = work.source.plan(self.n_workers)
        if not splits:
            return []
        payloads = [_serde.dumps((work.task_bytes, i, split)) for i, split in enumerate(splits)]
        budget = _reduce.ResultBudget(self.max_result_size)
        results: dict[int, tuple[str, bytes]] = {}

        def arrived(i: int, raw: bytes) -> bool:
            split, status, payload = _serde.loads(raw)
            budget.add(split, "split", status, payload)
            results[split] = (status, payload)
            return False

        self._run_units(_worker.run_local_payload, [(p, self._notes) for p in payloads], arrived)
        return [
            Outcome(split, Status(status), _serde.loads(payload))
            for split, (status, payload) in sorted(results.items())
        ]

    def run_calls(self, work: CallWork) -> list[CallRecord]:
        n_calls, chunk, batch = (1 if work.once else work.n_calls), work.chunk, work.batch
        groups = [list(range(start, min(n_calls, start + chunk))) for start in range(0, n_calls, chunk)]
        budget = _reduce.ResultBudget(self.max_result_size)
        done: list[tuple[str, list[tuple[int, str, Any, str | None]]]] = []

        def arrived(i: int, raw: bytes) -> bool:
            worker, records = _serde.loads(raw)
            for index, status, payload, _output in records:
                budget.add(index, "call", status, payload)
            done.append((worker, [(i, s, _serde.loads(p), o) for i, s, p, o in records]))
            # the first failure ends the job (the queued calls are dropped)
            return batch.stop_on_failure and any(r[1] == Status.ERROR for r in records)

        self._run_units(
            _worker.run_local_calls,
            [(work.batch_bytes, g, self._notes) for g in groups],
            arrived,
            [len(g) for g in groups],
        )
        where = _local_where() if work.once else None
        return [CallRecord(i, Status(s), v, o, where or worker) for worker, records in done for i, s, v, o in records]

    def run_on_executors(self, probe: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
        """One probe in each worker process: they meet at a short rendezvous (each notes its pid and
        waits for the others), so that no worker answers twice while another answers not at all."""
        rows: dict[int, dict[str, Any]] = {}

        def arrived(i: int, raw: bytes) -> bool:
            row = _serde.loads(raw)
            rows.setdefault(row.get("pid", i), row)
            return False

        folder = tempfile.mkdtemp(prefix="sparkdist-probe-")
        try:
            unit = (probe, folder, self.n_workers, RENDEZVOUS_SECONDS)
            self._run_units(_worker.local_probe, [unit] * self.n_workers, arrived)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return list(rows.values())

    def _run_units(
        self,
        fn: Any,
        units: list[tuple[Any, ...]],
        arrived: Callable[[int, bytes], bool],
        sizes: list[int] | None = None,
    ) -> None:
        """Run ``fn(*units[i])`` for every i in the pool; ``arrived(i, result)`` sees each result as it
        comes and may end the job early by returning True (the queued units are dropped).

        Units lost because *another* job's cancel ended the shared pool are run again on a fresh
        pool, so that cancel costs this job time but never its result."""
        pending = set(range(len(units)))
        while pending:
            kills = self._kills
            with self._submitting:
                futures = {self._submit(fn, *units[i], units=sizes[i] if sizes else 1): i for i in sorted(pending)}
            try:
                for future in concurrent.futures.as_completed(futures):
                    raw = future.result()
                    pending.discard(futures[future])
                    if arrived(futures[future], raw):
                        pending.clear()
                        break
            except (concurrent.futures.CancelledError, concurrent.futures.process.BrokenProcessPool):
                # the pool is gone (its futures are failed by its own manager thread; leave them be)
                if self._kills != kills:  # ended by a cancel, which also replaced it
                    if active_tag.get() not in self._cancelled:
                        continue  # another job's cancel: run what was lost again
                    raise
                with self._lock:  # a worker crashed: the next job gets a fresh pool
                    broken, self._pool = self._pool, None
                if broken is not None:
                    dead = _dead_workers(broken, self._notes)
                    broken.shutdown(wait=False)
                    raise self._died(dead) from None
                raise
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            for future in futures:  # ended early: drop what is still queued
                future.cancel()

    def _died(self, dead: list[tuple[int, int | None, str]]) -> JobError:
        """The error for a pool whose worker(s) died: which, running what, and how they ended."""
        named = [d for d in dead if d[2]]
        if not named:
            return JobError(
                f"a worker process of {self!r} died while running the job. In a script, keep the code that "
                "starts jobs under `if __name__ == '__main__':` (workers are spawned and import the main module); "
                "otherwise a worker ran out of memory or crashed. The pool will be restarted on the next job."
            )
        pid, code, running = named[0]
        how = _how_it_ended(code)
        return WorkerDiedError(
            f"the worker process running {running} died on {socket.gethostname()} (pid {pid}): {how}. The job was "
            "stopped; the pool will be restarted on the next job.",
            remote_type="WorkerDied",
            remote_message=f"the worker process running {running} died: {how}",
        )

    def __repr__(self) -> str:
        return f"LocalParallelComputeContext(n_workers={self.n_workers})"


def _dead_workers(pool: concurrent.futures.ProcessPoolExecutor, notes: str) -> list[tuple[int, int | None, str]]:
    """(pid, exit code or None, what it was running) of the pool's processes that ended, from their
    exit codes and the notes workers leave while they run something (a note of a process that is
    gone names what it died running)."""
    codes: dict[int, int | None] = {}
    for pid, proc in list(getattr(pool, "_processes", {}).items()):
        proc.join(timeout=1)
        if proc.exitcode:
            codes[pid] = proc.exitcode
    with contextlib.suppress(OSError):
        for name in os.listdir(notes):
            if name.isdigit() and not _alive(int(name)):
                codes.setdefault(int(name), None)
    dead = []
    for pid, code in codes.items():
        try:
            with open(os.path.join(notes, str(pid)), encoding="utf-8") as f:
                running = f.read()
            os.remove(os.path.join(notes, str(pid)))
        except OSError:
            running = ""
        dead.append((pid, code, running))
    return sorted(dead, key=lambda d: not d[2])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (" (e.g. by the out-of-memory killer)" if name == "SIGKILL" else "")
    ended = "exited" if code is None else f"exited with code {code}"
    return f"{ended} without a result or an error (a crash, or an exit outside the function's own call)"


def _own_copy(value: Any) -> Any:
    """A deep copy of arguments for functions run in this process, so that a function changing its
    arguments in place never changes the caller's objects (as when they travel to a worker); an
    object that cannot be copied is passed as it is."""
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - e.g. a lock or a session among the arguments
        return value


def _local_where() -> str:
    return f"{socket.gethostname()}/local"


_live_pools: weakref.WeakSet[LocalParallelComputeContext] = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    for ctx in list(_live_pools):
        ctx.close()
