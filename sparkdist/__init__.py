"""sparkdist: RevoScaleR's distributed-computing model (compute contexts, rxDistributeJob,
rxIsDistributedContext) for PySpark — classic Spark, Spark Connect, or no Spark at all.

Importing sparkdist is fast and starts no JVM.

>>> import sparkdist
>>> sparkdist.is_distributed_context(sparkdist.LocalComputeContext())
False
>>> sparkdist.pema.Summary.__name__      # subpackages load on first use
'Summary'
"""

from __future__ import annotations

from sparkdist._current import get_compute_context, set_compute_context
from sparkdist._options import options
from sparkdist.context import ComputeContext
from sparkdist.distribute import distribute_job, is_distributed_context
from sparkdist.errors import (
    ArgumentTypeError,
    ColumnNotFoundError,
    ComputeContextError,
    DataNotFoundError,
    DataSourceError,
    DependencyError,
    EmptyDataError,
    InvalidArgumentError,
    JobError,
    MissingPackageError,
    NotPicklableError,
    PackageError,
    ResultTooLargeError,
    SchemaConflictError,
    ServerUnreachableError,
    SessionStoppedError,
    SparkDistError,
    SparkDistWarning,
    TaskError,
    VersionMismatchWarning,
    WorkerDiedError,
)
from sparkdist.execute import exec_job, task_rng
from sparkdist.groups import GroupResult, GroupResults, exec_by
from sparkdist.jobs import Job, JobTimeoutError, as_completed, get_jobs
from sparkdist.local import LocalComputeContext, LocalParallelComputeContext
from sparkdist.nodes import executor_info, ping_executors
from sparkdist.outputs import WriteReport
from sparkdist.sources import DataSource, DeltaData, IcebergData, ParquetData, SparkData, ValidationReport
from sparkdist.spark import SparkComputeContext

__version__ = "0.2.0"

_SUBPACKAGES = ("pema",)


def __getattr__(name: str) -> object:
    """Subpackages as attributes, imported on first use: ``sparkdist.pema.Summary`` works after
    ``import sparkdist`` alone, and importing sparkdist stays light."""
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBPACKAGES])


__all__ = [
    "ArgumentTypeError",
    "ColumnNotFoundError",
    "ComputeContext",
    "ComputeContextError",
    "DataNotFoundError",
    "DataSource",
    "DataSourceError",
    "DeltaData",
    "DependencyError",
    "EmptyDataError",
    "GroupResult",
    "GroupResults",
    "IcebergData",
    "InvalidArgumentError",
    "Job",
    "JobError",
    "JobTimeoutError",
    "LocalComputeContext",
    "LocalParallelComputeContext",
    "MissingPackageError",
    "NotPicklableError",
    "PackageError",
    "ParquetData",
    "ResultTooLargeError",
    "SchemaConflictError",
    "ServerUnreachableError",
    "SessionStoppedError",
    "SparkComputeContext",
    "SparkData",
    "SparkDistError",
    "SparkDistWarning",
    "TaskError",
    "ValidationReport",
    "VersionMismatchWarning",
    "WorkerDiedError",
    "WriteReport",
    "__version__",
    "as_completed",
    "distribute_job",
    "exec_by",
    "exec_job",
    "executor_info",
    "get_jobs",
    "get_compute_context",
    "is_distributed_context",
    "options",
    "ping_executors",
    "set_compute_context",
    "task_rng",
]
