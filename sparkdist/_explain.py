"""What a job planned, told on the ``sparkdist`` logger at DEBUG (nothing is computed when it is off).

One line per decision, where it is taken: the API says what it runs over (splits, rows, bytes, skew,
the reader and why, task slots), the contexts say how splits map to tasks and where a reduce folds. To see it::

    logging.basicConfig()
    logging.getLogger("sparkdist").setLevel(logging.DEBUG)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sparkdist._options import log

if TYPE_CHECKING:
    from sparkdist.context import ComputeContext
    from sparkdist.sources.base import DataSource

__all__ = ["enabled", "job_plan", "reader", "reduce_note"]


def enabled() -> bool:
    """Whether the ``sparkdist`` logger reports DEBUG records (the plan is only worked out then)."""
    return log.isEnabledFor(logging.DEBUG)


def job_plan(call: str, ctx: ComputeContext, given: DataSource, source: DataSource, *details: str) -> None:
    """``call`` (e.g. "distribute_job(f)") over ``source`` (``given`` as the user gave it, ``source`` as
    ``ctx`` reads it): its splits, rows, bytes and skew from the source's own report, the reader chosen
    and why, the context and its task slots, and the call's ``details``."""
    if not enabled():
        return
    try:
        slots = ctx.task_slots
        report = source.describe(slots)
    except Exception as err:  # noqa: BLE001 - the plan is told for information: never fail the job for it
        log.debug("plan: %s in %r: (could not describe the data: %s)", call, ctx, err)
        return
    parts = [
        f"{report.source}",
        f"{_count(report.n_splits)} split{'' if report.n_splits == 1 else 's'}, {_count(report.n_rows)} rows, "
        f"{_bytes(report.n_bytes)}" + (f", largest/median split {report.skew:.2f}" if report.skew is not None else ""),
        *([reader(ctx, given, source)] if getattr(source, "engine", None) else []),
        f"{ctx!r} with {slots} task slot{'s' if slots != 1 else ''}",
        *details,
        *(f"warning: {w}" for w in report.warnings),
    ]
    log.debug("plan: %s: %s", call, "; ".join(parts))


def reduce_note(ctx: ComputeContext, reduce: Any, chunked: bool) -> str:
    """distribute_job's reduce and chunking, for :func:`job_plan`."""
    if reduce is None:
        fold = "no reduce: one result per split"
    elif ctx.is_distributed:
        fold = f"reduce {getattr(reduce, '__name__', repr(reduce))!r} (where it folds is told next)"
    else:
        fold = f"reduce {getattr(reduce, '__name__', repr(reduce))!r} folded in this process, in split order"
    return fold + ("; each split in chunks" if chunked else "")


def reader(ctx: ComputeContext, given: Any, source: Any) -> str:
    """Which reader reads ``source`` in ``ctx`` and why, e.g. "read with pyarrow by the executors
    (engine='auto': pyarrow opens the files on the driver and an executor)"."""
    engine, asked = getattr(source, "engine", None), getattr(given, "engine", None)
    how = "pyarrow" if engine == "arrow" else "Spark's reader (spark.read)"
    if not ctx.is_distributed:
        return f"read with pyarrow by the process that runs each split (a {type(ctx).__name__})"
    where = "by the executors" if engine == "arrow" else "on the cluster"
    if asked == engine:
        why = f"engine={asked!r} as given"
    elif engine == "arrow":
        why = f"engine={asked!r}: pyarrow opens the files on the driver and the executors"
    else:
        why = f"engine={asked!r}: pyarrow cannot open them on the driver or the executors (the warning logged for these paths says why)"
    return f"read with {how} {where} ({why})"


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _bytes(n: int | None) -> str:
    if n is None:
        return "? bytes"
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover - the loop always returns
