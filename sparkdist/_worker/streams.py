"""What a user call gets of its own while it runs: seeded random streams (Python's ``random``,
numpy's global state and a Generator for :func:`sparkdist.task_rng`) and, when asked, its console
output captured apart from other calls' (per thread or asyncio task)."""

from __future__ import annotations

import contextlib
import contextvars
import io
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["UNSEEDED", "captured_output", "current_task_rng", "rng_holder", "seeded_globals"]

_rng_var: contextvars.ContextVar[Any] = contextvars.ContextVar("sparkdist_task_rng", default=None)


def rng_holder() -> contextvars.ContextVar[Any]:
    """The context variable holding the running call's Generator (or :data:`UNSEEDED`)."""
    return _rng_var


#: The Generator slot of a call without ``rng_seed``: a fresh unseeded stream is made when asked for.
UNSEEDED = object()


def current_task_rng() -> Any:
    """The numpy Generator of the exec_job call running in this thread, or None outside a call."""
    rng = _rng_var.get()
    if rng is UNSEEDED:
        import numpy as np

        rng = np.random.default_rng()
        _rng_var.set(rng)
    return rng


_globals_lock = threading.RLock()


@contextlib.contextmanager
def seeded_globals(seed: int | None, spawn_key: tuple[int, ...]) -> Iterator[Any]:
    """With a seed: Python's ``random`` and numpy's global state seeded for the call that
    ``spawn_key`` names (exec_job: ``(index,)``; exec_by: words of the group's keys), and put back
    afterwards, yielding the call's own Generator; without: yields :data:`UNSEEDED`."""
    if seed is None:
        yield UNSEEDED
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
