"""Following a job's Spark work from the driver without a listening socket: stage progress (Spark
Connect's progress handler), and the first user failure of a ``continue_on_failure=False`` job
(classic Spark's status store)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sparkdist import _compat, _worker
from sparkdist._protocol import ErrorInfo

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["StopWatcher", "connect_progress", "watch_connect_progress"]


class StopWatcher:
    """Classic Spark, ``continue_on_failure=False``: watches the failed tasks of job ``tag`` and
    cancels the job as soon as one failed on a user error (a :class:`sparkdist._worker.StopJob`),
    so that Spark neither retries the call nor runs the job's other tasks on."""

    def __init__(self, session: SparkSession, tag: str | None, interval: float = 0.05) -> None:
        self.session, self.tag, self.interval = session, tag, interval
        self.stopped: tuple[int, ErrorInfo] | None = None
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


connect_progress: dict[str, tuple[int, int]] = {}  # job tag -> (tasks done, tasks total), Connect


def watch_connect_progress(session: SparkSession, tag: str) -> Callable[..., None] | None:
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
        connect_progress[tag] = (int(getattr(first, "num_completed_tasks", 0)), int(getattr(first, "num_tasks", 0)))

    session.registerProgressHandler(handler)  # type: ignore[arg-type]  # a plain function serves
    return handler
