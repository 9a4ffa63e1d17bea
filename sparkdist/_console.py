"""What a waiting call does at the user's console: a progress bar while it runs (in a terminal or a
notebook), and Ctrl-C (or Jupyter's stop button) turned into a cancel of its Spark work."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sparkdist.errors import ArgumentTypeError

__all__ = ["ProgressBar", "catch_ctrl_c", "check_progress", "interactive"]


def check_progress(progress: Any) -> bool:
    """``progress`` checked; None means "when the output is an interactive terminal or notebook"."""
    if progress is not None and not isinstance(progress, bool):
        raise ArgumentTypeError(f"progress must be True, False or None, got {progress!r}")
    if progress is None:
        return interactive()
    return progress


#: IPython shells of notebooks: Jupyter, Databricks, Google Colab.
_NOTEBOOK_SHELLS = ("ZMQInteractiveShell", "DatabricksShell", "Shell")


def interactive() -> bool:
    """A terminal, or a notebook's kernel (a module merely imported, e.g. ipykernel, does not count)."""
    if sys.stderr.isatty():
        return True
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # noqa: BLE001 - an IPython in any state: not a notebook then
        shell = None
    name = type(shell).__name__
    return name in _NOTEBOOK_SHELLS and (name != "Shell" or type(shell).__module__.startswith("google.colab"))


def catch_ctrl_c(on_interrupt: Callable[[], None], interrupted: threading.Event) -> Callable[[], None] | None:
    """While a waiting call runs Spark work in the main thread, Ctrl-C sets ``interrupted`` and calls
    ``on_interrupt`` (which cancels the job's Spark work from another thread) instead of raising
    inside the blocked Spark call: the call then ends with Spark's cancellation. A second Ctrl-C
    interrupts at once. Returns what puts the previous handler back (None: not the main thread)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        on_interrupt()

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main interpreter thread after all
        return None

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


class _Progressing(Protocol):
    description: str

    @property
    def id(self) -> str: ...

    @property
    def progress(self) -> tuple[int, int]: ...


class ProgressBar:
    """A tqdm bar (terminal or notebook) fed by polling a job's progress from a thread. It appears
    once there is something to count (not while a JVM starts) and counts splits or calls."""

    def __init__(self, job: _Progressing, unit: str = "split") -> None:
        self.job, self.unit = job, unit
        self.bar: Any = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, name=f"{job.id}-progress", daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.wait(0.25):
            with contextlib.suppress(Exception):
                self._draw(*self.job.progress)

    def _draw(self, done: int, total: int) -> None:
        if not total:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.job.description[:40], unit=self.unit, leave=False)
        if total != self.bar.total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=1)
        if self.bar is not None:
            with contextlib.suppress(Exception):
                self._draw(*self.job.progress)
            self.bar.close()
