"""The sparkdist error tree.

Every error sparkdist raises derives from :class:`SparkDistError`. Each subclass also
inherits the builtin exception it resembles, so callers can catch either the sparkdist
class or the builtin one::

    >>> from sparkdist.errors import DataNotFoundError, SparkDistError
    >>> issubclass(DataNotFoundError, FileNotFoundError)
    True
    >>> try:
    ...     raise DataNotFoundError("path '/nope' does not exist")
    ... except SparkDistError as err:
    ...     print(err)
    path '/nope' does not exist

All errors survive pickling, because they cross process boundaries.
"""

from __future__ import annotations

__all__ = [
    "ArgumentTypeError",
    "ColumnNotFoundError",
    "ComputeContextError",
    "DataNotFoundError",
    "DataSourceError",
    "DependencyError",
    "EmptyDataError",
    "InvalidArgumentError",
    "JobError",
    "MissingPackageError",
    "NotPicklableError",
    "PackageError",
    "ResultTooLargeError",
    "SchemaConflictError",
    "ServerUnreachableError",
    "SessionStoppedError",
    "SparkDistError",
    "SparkDistWarning",
    "TaskError",
    "VersionMismatchWarning",
    "WorkerDiedError",
]


class SparkDistError(Exception):
    """Root of every error raised by sparkdist.

    Every subclass can be built from its message alone, so the default pickling
    (type, args, ``__dict__``) restores it whole, extra attributes included.
    """

    def __str__(self) -> str:  # KeyError subclasses would otherwise repr() the message
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InvalidArgumentError(SparkDistError, ValueError):
    """An argument has the right type but a wrong value."""


class ArgumentTypeError(SparkDistError, TypeError):
    """An argument has a type sparkdist cannot use."""


class NotPicklableError(ArgumentTypeError):
    """A function or argument that must travel to workers cannot be pickled."""


class ComputeContextError(SparkDistError, ValueError):
    """A compute context is unusable as given."""


class SessionStoppedError(ComputeContextError, RuntimeError):
    """The SparkSession behind a compute context has been stopped."""


class DependencyError(ComputeContextError, ImportError):
    """A library that sparkdist needs in this Python is missing, too old, or cannot be imported with
    the others: pyspark (or its Connect dependencies) for a Spark context, pip for executor packages,
    a pyarrow or pandas built for numpy 1.x under numpy 2. The message says what to install."""


class ServerUnreachableError(ComputeContextError, ConnectionError):
    """Nothing accepts connections at a Spark Connect URL (``remote=`` or ``SPARK_REMOTE``)."""


class PackageError(SparkDistError, RuntimeError):
    """Packages asked for with ``packages=`` cannot be made available to the executors: no wheel for
    their platform, or a conflict with a library they already import.

    Attributes
    ----------
    requirement : str
        The requirement concerned (``"statsmodels>=0.14"``), or ``""`` when pip does not say.
    platform : str
        The executors' Python and platform as pip was asked for them (``"cp311 manylinux_2_35_x86_64"``).
    """

    def __init__(self, message: str, *, requirement: str = "", platform: str = "") -> None:
        super().__init__(message)
        self.requirement = requirement
        self.platform = platform


class MissingPackageError(PackageError, ModuleNotFoundError):
    """A context whose work runs in this Python (the local contexts) was given ``packages=`` that this
    Python does not have at a satisfying version; the message names them."""


class DataSourceError(SparkDistError, ValueError):
    """A data source is invalid: bad path, bad files, bad columns."""


class DataNotFoundError(DataSourceError, FileNotFoundError):
    """A path given as data does not exist or holds no Parquet files."""


class SchemaConflictError(DataSourceError):
    """Files of one data source disagree about the type of a column."""


class ColumnNotFoundError(DataSourceError, KeyError):
    """Requested columns are not in the data."""


class EmptyDataError(DataSourceError):
    """The data has no rows where rows are needed (for example, nothing to reduce)."""


class JobError(SparkDistError, RuntimeError):
    """A user function failed on a worker.

    Attributes
    ----------
    remote_type : str
        Name of the exception type raised on the worker, for example ``"ZeroDivisionError"``.
    remote_message : str
        Its message.
    remote_traceback : str
        The traceback text as formatted on the worker.
    split : int or None
        The split (or call) index on which it happened.
    """

    def __init__(
        self,
        message: str,
        *,
        remote_type: str = "",
        remote_message: str = "",
        remote_traceback: str = "",
        split: int | None = None,
    ) -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.split = split


class WorkerDiedError(JobError):
    """The worker process running a split or call ended without sending back a result or an error
    (``os._exit()``, a signal such as SIGKILL from the out-of-memory killer, a crash in native code).
    The message names the split or call, the host and, where known, how the process ended."""


class TaskError(SparkDistError, RuntimeError):
    """One failed call of :func:`sparkdist.exec_job` (with ``continue_on_failure=True`` it stands in
    that call's slot of the result instead of being raised).

    Attributes
    ----------
    remote_type, remote_message, remote_traceback : str
        The exception raised by the call, as on the worker.
    index : int
        The call's position; ``name`` is its key when ``elem_args`` was a dict.
    host : str
        Where it ran (host, process, and the Spark executor where known).
    keys : dict or None
        For a group of :func:`sparkdist.exec_by`: its key values (``index`` is then its position).
    """

    def __init__(
        self,
        message: str,
        *,
        remote_type: str = "",
        remote_message: str = "",
        remote_traceback: str = "",
        index: int = -1,
        name: object = None,
        host: str = "",
        keys: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.index = index
        self.name = name
        self.host = host
        self.keys = keys


class ResultTooLargeError(SparkDistError, MemoryError):
    """The results coming back to the driver exceed the limit set for them.

    Raised instead of letting the driver run out of memory; the work stops where it is.

    Attributes
    ----------
    limit : int or None
        The limit in bytes (None when Spark's own ``spark.driver.maxResultSize`` tripped).
    size : int or None
        How many bytes had arrived (or one result's size) when it tripped, where known.
    setting : str
        The setting to change, for example ``"max_result_size"``.

    >>> err = ResultTooLargeError("too much", limit=1024, size=4096, setting="max_result_size")
    >>> isinstance(err, MemoryError), err.limit, err.setting
    (True, 1024, 'max_result_size')
    """

    def __init__(
        self, message: str, *, limit: int | None = None, size: int | None = None, setting: str = "max_result_size"
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.size = size
        self.setting = setting


# -- warnings ---------------------------------------------------------------------------------------


class SparkDistWarning(UserWarning):
    """Root of the warnings sparkdist issues (filter them with ``warnings.filterwarnings``)."""


class VersionMismatchWarning(SparkDistWarning):
    """An executor (or worker process) runs another Python minor version, or another major version
    of a library that work travels with, than the driver: see :func:`sparkdist.executor_info`."""
