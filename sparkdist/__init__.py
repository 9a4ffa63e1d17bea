"""sparkdist: RevoScaleR's distributed-computing model (compute contexts, rxDistributeJob,
rxIsDistributedContext) for PySpark — classic Spark, Spark Connect, or no Spark at all.

Importing sparkdist is fast and starts no JVM.

>>> import sparkdist
>>> sparkdist.is_distributed_context(sparkdist.LocalComputeContext())
False
"""

from __future__ import annotations

from sparkdist.context import (
    ComputeContext,
    LocalComputeContext,
    LocalParallelComputeContext,
    get_compute_context,
    set_compute_context,
)
from sparkdist.distribute import distribute_job, is_distributed_context
from sparkdist.errors import (
    ArgumentTypeError,
    ColumnNotFoundError,
    ComputeContextError,
    DataNotFoundError,
    DataSourceError,
    EmptyDataError,
    InvalidArgumentError,
    JobError,
    NotPicklableError,
    ResultTooLargeError,
    SchemaConflictError,
    SessionStoppedError,
    SparkDistError,
    TaskError,
)
from sparkdist.execute import exec_job, task_rng
from sparkdist.jobs import Job, JobTimeoutError, as_completed, get_jobs
from sparkdist.sources import DataSource, ParquetData, SparkData, ValidationReport
from sparkdist.spark import SparkComputeContext

__version__ = "0.1.0"

__all__ = [
    "ArgumentTypeError",
    "ColumnNotFoundError",
    "ComputeContext",
    "ComputeContextError",
    "DataNotFoundError",
    "DataSource",
    "DataSourceError",
    "EmptyDataError",
    "InvalidArgumentError",
    "Job",
    "JobError",
    "JobTimeoutError",
    "LocalComputeContext",
    "LocalParallelComputeContext",
    "NotPicklableError",
    "ParquetData",
    "ResultTooLargeError",
    "SchemaConflictError",
    "SessionStoppedError",
    "SparkComputeContext",
    "SparkData",
    "SparkDistError",
    "TaskError",
    "ValidationReport",
    "__version__",
    "as_completed",
    "distribute_job",
    "exec_job",
    "get_jobs",
    "get_compute_context",
    "is_distributed_context",
    "set_compute_context",
    "task_rng",
]
