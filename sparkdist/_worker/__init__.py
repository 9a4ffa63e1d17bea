"""Code that runs on executors and pool workers, and nothing else; none of it knows which engine
runs it.

Small module-level functions only. They import heavy modules inside, and never capture a
SparkSession, a compute context or ``self``: what they need arrives as pickled bytes made on the
driver. ``common`` holds the shared records, result rows and where a task runs (:class:`Place`, set
by an engine's entry points: ``sparkdist.spark.tasks``), ``splits`` distribute_job's side,
``calls`` exec_job's, ``streams`` a call's seeded random streams and captured output, ``stopping``
the end of a job at its first failure, ``groups`` exec_by's, ``probes`` the questions sparkdist
asks executors, ``packages`` the packages shipped with ``packages=``.
"""

from __future__ import annotations

from sparkdist._worker import packages
from sparkdist._worker.calls import CallBatch, call_batches, call_rows, run_calls, run_local_calls
from sparkdist._worker.common import Place, SplitReader, SplitTask, at
from sparkdist._worker.groups import GroupCall, GroupTask, group_frames, same_keys
from sparkdist._worker.probes import LIBRARIES, PROBE_SCHEMA, environment, local_probe, probe_files, probe_slots
from sparkdist._worker.splits import (
    fold,
    frame_split,
    planned_groups,
    planned_splits,
    reduce_groups,
    run_local_payload,
    run_split,
    split_rows,
    split_tasks,
)
from sparkdist._worker.stopping import StopJob, StopPolicy, parse_stop
from sparkdist._worker.streams import current_task_rng

__all__ = [
    "LIBRARIES",
    "PROBE_SCHEMA",
    "CallBatch",
    "GroupCall",
    "GroupTask",
    "Place",
    "SplitReader",
    "SplitTask",
    "StopJob",
    "StopPolicy",
    "at",
    "call_batches",
    "call_rows",
    "current_task_rng",
    "environment",
    "fold",
    "frame_split",
    "group_frames",
    "local_probe",
    "packages",
    "parse_stop",
    "planned_groups",
    "planned_splits",
    "probe_files",
    "probe_slots",
    "reduce_groups",
    "run_calls",
    "run_local_calls",
    "run_local_payload",
    "run_split",
    "same_keys",
    "split_rows",
    "split_tasks",
]
