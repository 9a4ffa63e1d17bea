"""distribute_job's reduce on Spark, from DataFrame operations only, so it works on Spark Connect too.

The map stage emits one result per split (possibly cut into parts). Up to 64 splits, and under Spark
Connect (whose results stream in partition order), the driver folds them in split order as they
arrive, in the job's one stage. Otherwise, groups of about √n
*consecutive* splits are routed to one partition each (``repartitionById``), sorted, and folded
on the executors in split order, so ``reduce`` only has to be associative, not commutative.
The driver then receives about √n partials instead of n. When the split count is not known
before the job runs (an arbitrary DataFrame under Spark Connect, or after a shuffle), groups have a
fixed size instead of being sized by a counting pass: the reduce stays one Spark job.

The driver side lives here too: result rows are reassembled and counted against the context's
``max_result_size`` as they arrive.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sparkdist import _compat, _options, _serde, _worker
from sparkdist._protocol import RESULT_SCHEMA, Outcome, Status
from sparkdist.errors import ResultTooLargeError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def group_size(n_splits: int) -> int:
    """Splits per reduce group: ⌈√n⌉, so that both the groups and their count are about √n.

    >>> [group_size(n) for n in (1, 2, 4, 10, 100, 1000)]
    [1, 2, 2, 4, 10, 32]
    """
    return max(1, math.isqrt(n_splits - 1) + 1) if n_splits > 1 else 1


def collect_outcomes(
    mapped: DataFrame, limit: int | None, what: str = "split", *, until_error: bool = False
) -> list[Outcome]:
    """Collect result rows and rebuild the outcomes, sorted by split; past ``limit`` bytes a
    ResultTooLargeError (under Spark Connect rows stream in, so the rest is never fetched).
    ``until_error``: stop reading at the first failed outcome."""
    rows = _compat.iter_collect(mapped)
    try:
        return assemble(rows, limit, what, until_error=until_error)
    finally:
        rows.close()  # stopped early: drop the stream of the rest


def assemble(
    rows: Iterable[tuple[int, int, int, str, bytes]], limit: int | None, what: str, *, until_error: bool = False
) -> list[Outcome]:
    """Driver side: rebuild outcomes from result rows ``(key, part, nparts, status, payload)``.

    Payload bytes are counted against ``limit`` as they arrive, before anything is unpickled.
    With ``until_error`` the rows after the first complete failed outcome are not read.
    """
    budget = ResultBudget(limit)
    by_key: dict[int, list[tuple[int, str, bytes]]] = {}
    for key, part, nparts, status, payload in rows:
        budget.add(key, what, status, payload)
        by_key.setdefault(key, []).append((part, status, payload))
        if until_error and status == Status.ERROR and len(by_key[key]) == nparts:
            break
    out: list[Outcome] = []
    for key in sorted(by_key):
        pieces = sorted(by_key[key], key=lambda p: p[0])
        out.append(Outcome(key, Status(pieces[0][1]), _serde.loads(_serde.join_parts([p[2] for p in pieces]))))
    return out


class ResultBudget:
    """Counts the bytes of results arriving on the driver against the context's max_result_size.

    >>> budget = ResultBudget(1000)
    >>> budget.add(0, "split", "ok", bytes(600))
    >>> try:
    ...     budget.add(1, "split", "ok", bytes(600))
    ... except ResultTooLargeError as err:
    ...     print(err.size, err.limit, err.setting)
    1200 1000 max_result_size
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.total = 0

    def add(self, key: int, what: str, status: str, payload: bytes) -> None:
        """Count one arriving (pickled) piece; raise when it is a result refused on the worker or
        the total passes the limit."""
        if status == Status.TOO_LARGE:
            size = int(_serde.loads(payload))
            raise ResultTooLargeError(
                f"the result of {what} {key} is {format_bytes(size)}, more than max_result_size="
                f"{format_bytes(self.limit)}; it was not sent to the driver. {_ADVICE}",
                limit=self.limit,
                size=size,
            )
        self.total += len(payload)
        if self.limit is not None and self.total > self.limit:
            raise ResultTooLargeError(
                f"the results coming back to the driver passed max_result_size={format_bytes(self.limit)} "
                f"({format_bytes(self.total)} had arrived by {what} {key}); the job was stopped. {_ADVICE}",
                limit=self.limit,
                size=self.total,
            )


_ADVICE = (
    "Return less from each call, combine results on the workers (distribute_job's reduce=), or raise the "
    "limit: the compute context's max_result_size (for example ctx.max_result_size = '4g'; None turns it off)."
)


def format_bytes(n: int | None) -> str:
    """Human-readable size.

    >>> format_bytes(1000), format_bytes(3 << 20), format_bytes(1 << 30), format_bytes(None)
    ('1000 bytes', '3.0 MiB', '1.0 GiB', 'unlimited')
    """
    if n is None:
        return "unlimited"
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


#: Up to this many splits, their results are folded on the driver as they arrive (as Spark's own
#: ``RDD.reduce`` does): a second stage would cost more than the folds.
DRIVER_FOLD_MAX = 64
#: Under Spark Connect, where the split count of a DataFrame is not known before the job runs, results
#: stream in partition order: the driver folds them as they come, holding about one at a time.
FOLD_STREAMS_ON_DRIVER = True


def fold_on_driver(mapped: DataFrame, reduce_bytes: bytes, limit: int | None) -> list[Outcome]:
    """Fold the map stage's outcomes on the driver, in split order, as they arrive: one job, one stage.

    Under Spark Connect results stream in partition order, so the driver holds about one partial at a
    time whatever the number of splits. Every partial travels to the driver, so every one counts
    against ``limit``. The reduce is the driver's own pickle of the user's function.
    """
    reduce = _serde.loads(reduce_bytes)
    rows = _compat.iter_collect(mapped)
    budget = ResultBudget(limit)
    parts: dict[int, list[tuple[int, str, bytes]]] = {}
    ready: dict[int, Outcome] = {}
    acc: Outcome | None = None
    next_split = 0
    try:
        for key, part, nparts, status, payload in rows:
            budget.add(key, "split", status, payload)
            pieces = parts.setdefault(key, [])
            pieces.append((part, status, payload))
            if len(pieces) < nparts:
                continue
            del parts[key]
            pieces.sort(key=lambda p: p[0])
            value = _serde.loads(_serde.join_parts([p[2] for p in pieces]))
            ready[key] = Outcome(key, Status(pieces[0][1]), value)
            while next_split in ready:
                outcome = ready.pop(next_split)
                next_split += 1
                acc = _worker.fold(reduce, [acc, outcome] if acc is not None else [outcome])
                if acc is not None and acc.status in (Status.ERROR, Status.TOO_LARGE):
                    return [acc]
    finally:
        rows.close()
    if ready:  # a split missing before these (every split sends an outcome, so not expected): fold the rest
        acc = _worker.fold(reduce, [*([acc] if acc is not None else []), *(o for _, o in sorted(ready.items()))])
    return [acc] if acc is not None else []


#: Splits per group when the split count is not known before the job runs: up to 4,096 splits
#: the driver still gets at most √n partials, and no pass is spent counting the splits.
UNKNOWN_N_GROUP = 64


def tree_reduce(
    mapped: DataFrame, n_splits: int | None, reduce_bytes: bytes, limit: int | None, slots: int
) -> list[Outcome]:
    """Reduce the map stage's outcomes in the same Spark job. Up to :data:`DRIVER_FOLD_MAX` splits, and
    under Spark Connect, on the driver as they arrive (:func:`fold_on_driver`); else on the executors,
    returning ≈√n group outcomes (groups of :data:`UNKNOWN_N_GROUP` when ``n_splits`` is unknown).
    Groups are routed to at most ``slots`` partitions, so the stage runs in one wave."""
    from pyspark.sql import functions as F

    streamed = n_splits is None and FOLD_STREAMS_ON_DRIVER and _compat.is_connect(mapped)
    if streamed or (n_splits is not None and n_splits <= DRIVER_FOLD_MAX):
        _options.debug(
            "plan: reduce on the driver as results arrive (%s)",
            "Spark Connect streams them in order" if streamed else f"{n_splits} splits <= {DRIVER_FOLD_MAX}",
        )
        return fold_on_driver(mapped, reduce_bytes, limit)
    if n_splits is None:
        size, n_partitions = UNKNOWN_N_GROUP, max(1, slots)
    else:
        size = group_size(n_splits)
        n_groups = -(-n_splits // size) if n_splits else 0
        if n_groups >= n_splits:  # one or two splits: nothing to gain from another stage
            return collect_outcomes(mapped, limit)
        n_partitions = min(n_groups, max(1, slots))  # one wave of tasks; a task may fold several groups
    _options.debug(
        "plan: reduce on the executors, groups of %d consecutive splits in %d partitions", size, n_partitions
    )
    grouped = mapped.withColumn("_group", (F.col("split") / F.lit(size)).cast("int"))
    # Each group lands whole in one partition (ids are taken modulo n_partitions); sorted by split,
    # a partition's groups arrive one after another, each in split order.
    routed = _compat.repartition_by_id(grouped, n_partitions, "_group").sortWithinPartitions("split", "part")
    reduced = routed.mapInArrow(
        functools.partial(_worker.spark_reduce_groups, reduce_bytes, size, limit), RESULT_SCHEMA
    )
    return collect_outcomes(reduced, limit)
