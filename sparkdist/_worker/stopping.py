"""Ending an exec_job at its first failing call (``continue_on_failure=False``) on an engine whose
tasks cannot tell each other directly: a marker file on the executor, and a task failed on purpose
whose message carries the failed call (as JSON text, never a pickle) for the driver to read."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from sparkdist._protocol import ErrorInfo
from sparkdist._worker.common import files_root, place

__all__ = ["STOP_MARKER", "StopJob", "StopPolicy", "parse_stop", "read_stop", "stopped_before", "write_stop"]


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


def read_stop(tag: str) -> tuple[int, ErrorInfo] | None:
    """The failure that a task of job ``tag`` recorded on this executor, if any."""
    path = _marker(tag)
    try:
        with open(path or "", encoding="utf-8") as fh:
            return parse_stop(fh.read())
    except OSError:
        return None


def write_stop(tag: str, index: int, info: ErrorInfo) -> None:
    """Record on this executor that call ``index`` of job ``tag`` failed (written whole, atomically)."""
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


def stopped_before(stop: StopPolicy) -> tuple[int, ErrorInfo] | None:
    """The failure that ended the job, if a task on this executor has recorded one; a classic retry
    that finds none waits for the driver's cancel first (see :class:`StopPolicy`)."""
    found = read_stop(stop.tag)
    if found is not None or not stop.raise_:
        return found
    if place().attempt == 0:
        return None
    deadline = time.monotonic() + stop.guard_seconds
    while time.monotonic() < deadline:  # interrupted by the driver's cancel when the job is over
        time.sleep(0.1)
        found = read_stop(stop.tag)
        if found is not None:
            return found
    return None


STOP_MARKER = "SPARKDIST-STOP-JOB:"


class StopJob(RuntimeError):
    """Fails the task on purpose so that the engine cancels the job's other tasks; the failed
    call's ErrorInfo rides in the message as JSON (text, never a pickle) for the driver to read."""

    def __init__(self, index: int, info: ErrorInfo) -> None:
        import base64
        import json

        blob = base64.b64encode(json.dumps({"index": index, "info": info}).encode()).decode()
        super().__init__(f"{STOP_MARKER}{blob}!")


def parse_stop(text: str) -> tuple[int, ErrorInfo] | None:
    """Driver side: the failed call carried by a StopJob inside an engine error's text, if any."""
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
