"""Tree reduce built from DataFrame operations only, so it works on Spark Connect too.

The map stage emits one result per split (possibly cut into parts). Groups of about √n
*consecutive* splits are routed to one partition each (``repartitionById``), sorted, and folded
on the executors in split order, so ``reduce`` only has to be associative, not commutative.
The driver then receives about √n partials instead of n.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from sparkdist import _compat, _worker

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from sparkdist._worker import Outcome


def group_size(n_splits: int) -> int:
    """Splits per reduce group: ⌈√n⌉, so that both the groups and their count are about √n.

    >>> [group_size(n) for n in (1, 2, 4, 10, 100, 1000)]
    [1, 2, 2, 4, 10, 32]
    """
    return max(1, math.isqrt(n_splits - 1) + 1) if n_splits > 1 else 1


def collect_outcomes(mapped: DataFrame) -> list[Outcome]:
    """Collect result rows and rebuild the outcomes, sorted by split."""
    return _worker.assemble_rows(tuple(r) for r in mapped.collect())


def tree_reduce(mapped: DataFrame, n_splits: int | None, reduce_bytes: bytes) -> list[Outcome]:
    """Reduce the map stage's outcomes on the executors; returns ≈√n group outcomes."""
    from pyspark.sql import functions as F

    persisted = None
    if n_splits is None:
        # The split count of an arbitrary DataFrame is unknown without running it (Connect has no
        # RDD); keep the small map output and count its splits, then reduce from the cache.
        persisted = mapped = mapped.persist()
        top = mapped.agg(F.max("split")).collect()[0][0]
        n_splits = 0 if top is None else int(top) + 1
    try:
        size = group_size(n_splits)
        n_groups = -(-n_splits // size) if n_splits else 0
        if n_groups >= n_splits:  # one or two splits: nothing to gain from another stage
            return collect_outcomes(mapped)
        grouped = mapped.withColumn("_group", (F.col("split") / F.lit(size)).cast("int"))
        routed = _compat.repartition_by_id(grouped, n_groups, "_group").sortWithinPartitions("split", "part")
        reduced = routed.mapInArrow(
            functools.partial(_worker.spark_reduce_groups, reduce_bytes, size), _worker.RESULT_SCHEMA
        )
        return collect_outcomes(reduced)
    finally:
        if persisted is not None:
            persisted.unpersist()
