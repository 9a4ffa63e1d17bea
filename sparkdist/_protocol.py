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
        f"on {info['host']}; last frames of the remote traceback:\n{_tail(info)}",
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
        f"on {info['host']}; last frames of the remote traceback:\n{_tail(info)}",
        remote_type=info["type"],
        remote_message=info["message"],
        remote_traceback=info["traceback"],
        index=index,
        name=name,
        host=info["host"],
        keys=keys,
    )
