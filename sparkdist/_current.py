"""The current compute context: the innermost ``with ctx:`` block of this thread or asyncio task,
else the process-wide default set with :func:`set_compute_context`, else an automatic default
(the active SparkSession, wrapped, or :class:`LocalComputeContext`).

>>> from sparkdist import LocalComputeContext, get_compute_context, set_compute_context
>>> ctx = LocalComputeContext()
>>> previous = set_compute_context(ctx)
>>> get_compute_context() is ctx
True
>>> _ = set_compute_context(None)
"""

from __future__ import annotations

import threading
from typing import Any

from sparkdist import _compat, _compat_libs
from sparkdist.context import ComputeContext, scoped
from sparkdist.errors import ArgumentTypeError
from sparkdist.local import LocalComputeContext
from sparkdist.spark import SparkComputeContext
from sparkdist.spark.session import configured_remote

__all__ = ["check_context", "get_compute_context", "resolve_context", "set_compute_context"]

_process_default: ComputeContext | None = None  # set_compute_context's, for every thread
_DEFAULT_LOCAL = LocalComputeContext()
_wrapped_sessions: dict[int, ComputeContext] = {}
_remote_contexts: dict[str, SparkComputeContext] = {}  # the automatic default of SPARK_REMOTE, per URL
_lock = threading.Lock()


def _default_context() -> ComputeContext:
    session = _compat.active_session()
    if session is None:
        remote = configured_remote()  # SPARK_REMOTE or spark.remote: the user chose Spark Connect
        if remote is None:
            return _DEFAULT_LOCAL
        with _lock:
            remote_ctx = _remote_contexts.get(remote)
            built = remote_ctx.wrapped_session if remote_ctx is not None else None
            if remote_ctx is None or (built is not None and _compat.is_stopped(built)):
                remote_ctx = _remote_contexts[remote] = SparkComputeContext(remote=remote)
            return remote_ctx
    with _lock:
        for known in _remote_contexts.values():  # the session a SPARK_REMOTE context built: that context
            if known.wrapped_session is session:
                return known
        ctx = _wrapped_sessions.get(id(session))
        if not isinstance(ctx, SparkComputeContext) or ctx.wrapped_session is not session:
            ctx = SparkComputeContext(session)
            _wrapped_sessions.clear()  # one active session at a time: forget the ones before
            _wrapped_sessions[id(session)] = ctx
        return ctx


def get_compute_context() -> ComputeContext:
    """The current compute context: the innermost ``with ctx:`` block of this thread or asyncio task,
    else the one :func:`set_compute_context` made the default of the whole process, else
    :class:`LocalComputeContext` -- except that when a SparkSession is already active in the process
    (a Databricks or Jupyter notebook with ``spark`` defined, a ``DatabricksSession``) the default
    wraps it, and that ``SPARK_REMOTE`` (or ``spark.remote`` in spark-defaults.conf) makes it a
    :class:`SparkComputeContext` on that Spark Connect server.
    """
    ctx = scoped.get()
    if ctx is not None:
        return ctx
    return _process_default if _process_default is not None else _default_context()


def set_compute_context(compute_context: ComputeContext | None) -> ComputeContext | None:
    """Make ``compute_context`` the default of the whole process, every thread included (RevoScaleR's
    ``rxSetComputeContext``); None goes back to the automatic default. Returns the process default that
    was set before (None when there was none), so that ``prev = set_compute_context(x); ...;
    set_compute_context(prev)`` restores exactly; :func:`get_compute_context` tells the current one.
    Inside a ``with ctx:`` block that block's context stays current until it ends.

    >>> import threading
    >>> from sparkdist import LocalParallelComputeContext
    >>> previous = set_compute_context(LocalParallelComputeContext(2))
    >>> seen = []
    >>> t = threading.Thread(target=lambda: seen.append(get_compute_context()))
    >>> t.start(); t.join()
    >>> seen[0]
    LocalParallelComputeContext(n_workers=2)
    >>> _ = set_compute_context(None)
    """
    global _process_default
    if compute_context is not None:
        check_context(compute_context, "compute_context")
    with _lock:
        previous, _process_default = _process_default, compute_context
    return previous


def check_context(value: Any, arg: str) -> ComputeContext:
    """``value`` if it is a ComputeContext, else a clear ArgumentTypeError naming ``arg``."""
    if not isinstance(value, ComputeContext):
        raise ArgumentTypeError(
            f"{arg} must be a sparkdist ComputeContext (LocalComputeContext, LocalParallelComputeContext or "
            f"SparkComputeContext), got {type(value).__name__}: {value!r}"
        )
    return value


def resolve_context(compute_context: ComputeContext | None) -> ComputeContext:
    """The context a call should use: its argument, else the current one; checked usable."""
    _compat_libs.check_libraries()  # a clear error, not an ABI traceback, for a pyarrow or pandas that cannot work here
    ctx = get_compute_context() if compute_context is None else check_context(compute_context, "compute_context")
    ctx.check_usable()
    return ctx
