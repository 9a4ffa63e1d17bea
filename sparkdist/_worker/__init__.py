"""Code that runs on executors and pool workers, and nothing else.

Small module-level functions only. They import heavy modules inside, and never capture a
SparkSession, a compute context or ``self``: what they need arrives as pickled bytes made on the
driver. ``common`` holds the shared records and result rows, ``splits`` distribute_job's side,
``calls`` exec_job's, ``groups`` exec_by's, ``probes`` the questions sparkdist asks executors.
"""

from __future__ import annotations

from sparkdist._worker.calls import (
    CallBatch,
    StopJob,
    StopPolicy,
    current_task_rng,
    parse_stop,
    rdd_exec_tasks,
    run_calls,
    run_local_calls,
    spark_exec_tasks,
)
from sparkdist._worker.common import SplitReader, SplitTask
from sparkdist._worker.groups import GroupCall, GroupTask, same_keys, spark_group_frames
from sparkdist._worker.probes import LIBRARIES, PROBE_SCHEMA, environment, local_probe, probe_files, probe_slots
from sparkdist._worker.splits import (
    fold,
    rdd_map_splits,
    run_local_payload,
    run_split,
    spark_map_fold_groups,
    spark_map_frame,
    spark_map_splits,
    spark_reduce_groups,
)

__all__ = [
    "LIBRARIES",
    "PROBE_SCHEMA",
    "CallBatch",
    "GroupCall",
    "GroupTask",
    "SplitReader",
    "SplitTask",
    "StopJob",
    "StopPolicy",
    "current_task_rng",
    "environment",
    "fold",
    "local_probe",
    "parse_stop",
    "probe_files",
    "probe_slots",
    "rdd_exec_tasks",
    "rdd_map_splits",
    "run_calls",
    "run_local_calls",
    "run_local_payload",
    "run_split",
    "same_keys",
    "spark_exec_tasks",
    "spark_group_frames",
    "spark_map_fold_groups",
    "spark_map_frame",
    "spark_map_splits",
    "spark_reduce_groups",
]
