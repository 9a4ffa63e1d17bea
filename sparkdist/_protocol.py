"""Typed records between the driver and the workers, the one result schema, and the errors built
from what a failed worker call sends back.

A split's :class:`Outcome` (or an exec_job call's, keyed by the call's index) is sent as result
rows ``(split, part, nparts, status, payload)``: the pickled value, cut into parts.

>>> Outcome(3, Status.OK, 42).status == "ok"
True
"""

from __future__ import annotations

import enum
import functools
import re
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

from sparkdist._checks import name_of
from sparkdist.errors import JobError, TaskError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "RESULT_SCHEMA",
    "ROW_MARKER",
    "CallRecord",
    "GroupRecord",
    "ErrorInfo",
    "Outcome",
    "Status",
    "environment_hint",
    "job_error",
    "result_arrow_schema",
    "task_error",
]


#: A column a zero-column selection (``columns=[]``) carries through Spark, which sends no rows for a
#: DataFrame without columns; workers drop it before calling the user's function.
ROW_MARKER = "__sparkdist_row__"


class Status(str, enum.Enum):
    """What became of one split or call."""

    OK = "ok"  # value: the function's result
    EMPTY = "empty"  # the split had no rows; the function was not called
    ERROR = "error"  # value: an ErrorInfo
    TOO_LARGE = "too_large"  # the result was over max_result_size and not sent; value: its size

    def __str__(self) -> str:
        return self.value


class ErrorInfo(TypedDict):
    """What a failed user call sends back instead of raising."""

    type: str
    message: str
    traceback: str
    where: str  # the function or method that failed
    host: str


class Outcome(NamedTuple):
    """The outcome of one split (or of one exec_job call, keyed by its index)."""

    split: int
    status: Status
    value: Any


class CallRecord(NamedTuple):
    """One exec_job call as the driver receives it."""

    call: int  # its index
    status: Status
    value: Any  # the result, or an ErrorInfo
    output: str | None  # what it printed, when captured
    where: str  # host and executor (or process) it ran on


class GroupRecord(NamedTuple):
    """One exec_by group as the driver receives it."""

    keys: tuple[Any, ...]  # the group's key values, in the order of the key columns
    status: Status
    value: Any  # the result, or an ErrorInfo
    output: str | None  # what it printed, when captured
    where: str  # host and process (and Spark task) it ran in


#: Schema of every row that sparkdist's Spark tasks emit.
RESULT_SCHEMA = "split long, part int, nparts int, status string, payload binary"


@functools.lru_cache(maxsize=1)
def result_arrow_schema() -> pa.Schema:
    """:data:`RESULT_SCHEMA` in Arrow's terms."""
    import pyarrow as pa

    return pa.schema(
        [
            ("split", pa.int64()),
            ("part", pa.int32()),
            ("nparts", pa.int32()),
            ("status", pa.string()),
            ("payload", pa.binary()),
        ]
    )


def _tail(info: ErrorInfo, lines: int = 12) -> str:
    return "\n".join(info["traceback"].strip().splitlines()[-lines:])


def job_error(info: ErrorInfo, split: int, func: Any, what: str = "split") -> JobError:
    """The JobError for a failed split (or call: ``what="call"``) of ``func``."""
    where = info.get("where") or name_of(func)
    return JobError(
        f"{where!r} failed on {what} {split} with {info['type']}: {info['message']}\n"
        f"on {info['host']}; last frames of the remote traceback:\n{_tail(info)}"
        + environment_hint(info["type"], info["message"], info["host"]),
        remote_type=info["type"],
        remote_message=info["message"],
        remote_traceback=info["traceback"],
        split=split,
    )


def task_error(info: ErrorInfo, index: int, name: Any, func: Any, *, keys: dict[str, Any] | None = None) -> TaskError:
    """The TaskError standing in a failed exec_job call's slot (or exec_by group's: ``keys``)."""
    if keys is not None:
        call = "the group " + ", ".join(f"{k}={v!r}" for k, v in keys.items())
    else:
        call = f"call {index}" + (f" ({name!r})" if name is not None else "")
    return TaskError(
        f"{call} of {info.get('where') or name_of(func)!r} failed with {info['type']}: {info['message']}\n"
        f"on {info['host']}; last frames of the remote traceback:\n{_tail(info)}"
        + environment_hint(info["type"], info["message"], info["host"]),
        remote_type=info["type"],
        remote_message=info["message"],
        remote_traceback=info["traceback"],
        index=index,
        name=name,
        host=info["host"],
        keys=keys,
    )


# -- environment hints --------------------------------------------------------------------------------

_NO_MODULE = re.compile(r"No module named '([^']+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from '([^']+)'")
#: what a pickle made by another version of Python, cloudpickle or a library says when it is loaded
_UNPICKLING = ("unsupported pickle protocol", "Can't get attribute", "_unpickle", "code() argument", "code expected")


def environment_hint(remote_type: str, message: str, host: str = "") -> str:
    """A paragraph to add to the error of a failure that comes from the executor's environment
    rather than from the user's code: a module missing there, an import from another version of a
    library, a pickle that another version cannot load. Empty for every other failure.

    >>> print(environment_hint("ModuleNotFoundError", "No module named 'sklearn'", "node-7 (pid 41)").strip())
    The module 'sklearn' cannot be imported on node-7 (pid 41): the executors' Python environment differs \
from the driver's. sparkdist.executor_info() lists every executor's Python and library versions next to \
the driver's; install 'sklearn' where the work runs, or ship its distribution with the job: \
packages=['<its name on PyPI>'].
    >>> environment_hint("ZeroDivisionError", "division by zero")
    ''
    """
    where = f" on {host}" if host else " where the work ran"
    missing = _NO_MODULE.search(message)
    if remote_type in ("ModuleNotFoundError", "ImportError") and missing is not None:
        module = missing.group(1).split(".")[0]
        return (
            f"\nThe module {module!r} cannot be imported{where}: the executors' Python environment differs from "
            "the driver's. sparkdist.executor_info() lists every executor's Python and library versions next to "
            f"the driver's; install {module!r} where the work runs, or ship its distribution with the job: "
            "packages=['<its name on PyPI>']."
        )
    other = _CANNOT_IMPORT.search(message)
    if remote_type == "ImportError" and other is not None:
        module = other.group(2).split(".")[0]
        return (
            f"\n{other.group(1)!r} is not in the version of {module!r}{where}: it differs from the driver's. "
            "sparkdist.executor_info() lists every executor's library versions next to the driver's."
        )
    if remote_type in ("UnpicklingError", "PicklingError") or any(text in message for text in _UNPICKLING):
        return (
            f"\nThis looks like a pickle made by another version of Python, cloudpickle or a library than the "
            f"one{where}. sparkdist.executor_info() lists every executor's Python and library versions next to "
            "the driver's: make them match."
        )
    return ""
