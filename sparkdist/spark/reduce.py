"""distribute_job's reduce on Spark, from DataFrame operations only, so it works on Spark Connect too.

The map stage emits one result per split (possibly cut into parts). Up to 64 splits, and under Spark
Connect (whose results stream in partition order), the driver folds them in split order as they
arrive, in the job's one stage. Otherwise, groups of about √n *consecutive* splits are routed to one
partition each (``repartitionById``), sorted, and folded on the executors in split order, so
``reduce`` only has to be associative, not commutative. The driver then receives about √n partials
instead of n. When the split count is not known before the job runs (an arbitrary DataFrame under
Spark Connect, or after a shuffle), groups have a fixed size instead of being sized by a counting
pass: the reduce stays one Spark job.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from sparkdist import _compat, _reduce, _serde
from sparkdist._protocol import RESULT_SCHEMA, Outcome
from sparkdist.spark import tasks

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["DRIVER_FOLD_MAX", "FOLD_STREAMS_ON_DRIVER", "UNKNOWN_N_GROUP", "collect_outcomes", "tree_reduce"]

#: Up to this many splits, their results are folded on the driver as they arrive (as Spark's own
#: ``RDD.reduce`` does): a second stage would cost more than the folds.
DRIVER_FOLD_MAX = 64
#: Under Spark Connect, where the split count of a DataFrame is not known before the job runs, results
#: stream in partition order: the driver folds them as they come, holding about one at a time.
FOLD_STREAMS_ON_DRIVER = True
#: Splits per group when the split count is not known before the job runs: up to 4,096 splits
#: the driver still gets at most √n partials, and no pass is spent counting the splits.
UNKNOWN_N_GROUP = 64


def collect_outcomes(
    mapped: DataFrame, limit: int | None, what: str = "split", *, until_error: bool = False
) -> list[Outcome]:
    """Collect result rows and rebuild the outcomes, sorted by split; past ``limit`` bytes a
    ResultTooLargeError (under Spark Connect rows stream in, so the rest is never fetched).
    ``until_error``: stop reading at the first failed outcome."""
    rows = _compat.iter_collect(mapped)
    try:
        return _reduce.assemble(rows, limit, what, until_error=until_error)
    finally:
        rows.close()  # stopped early: drop the stream of the rest


def fold_on_driver(mapped: DataFrame, reduce_bytes: bytes, limit: int | None) -> list[Outcome]:
    """Fold the map stage's outcomes on the driver, in split order, as they arrive: one job, one stage
    (see :func:`sparkdist._reduce.fold_rows`). The reduce is the driver's own pickle of the user's
    function."""
    rows = _compat.iter_collect(mapped)
    try:
        return _reduce.fold_rows(rows, _serde.loads(reduce_bytes), limit)
    finally:
        rows.close()


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
        return fold_on_driver(mapped, reduce_bytes, limit)
    if n_splits is None:
        size, n_partitions = UNKNOWN_N_GROUP, max(1, slots)
    else:
        size = _reduce.group_size(n_splits)
        n_groups = -(-n_splits // size) if n_splits else 0
        if n_groups >= n_splits:  # one or two splits: nothing to gain from another stage
            return collect_outcomes(mapped, limit)
        n_partitions = min(n_groups, max(1, slots))  # one wave of tasks; a task may fold several groups
    grouped = mapped.withColumn("_group", (F.col("split") / F.lit(size)).cast("int"))
    # Each group lands whole in one partition (ids are taken modulo n_partitions); sorted by split,
    # a partition's groups arrive one after another, each in split order.
    routed = _compat.repartition_by_id(grouped, n_partitions, "_group").sortWithinPartitions("split", "part")
    reduced = routed.mapInArrow(functools.partial(tasks.reduce_groups, reduce_bytes, size, limit), RESULT_SCHEMA)
    return collect_outcomes(reduced, limit)
