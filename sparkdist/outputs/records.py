"""What travels back from a writing task, and what the driver reports: small records only, never rows.

A task that wrote a split's (a group's, a call's) frames sends a :class:`WriteRecord`: the files it
wrote (where, which partition folder, rows, bytes, Delta statistics) and the schema of the frames.
The driver commits those files and sums them into a :class:`WriteReport`.

>>> WriteReport(rows=10, files=2, bytes=2048, destination="/data/out", version=None)
WriteReport(rows=10, files=2, bytes=2048, destination='/data/out', version=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FileRecord", "WriteRecord", "WriteReport"]


@dataclass(frozen=True)
class FileRecord:
    """One Parquet file a task attempt wrote."""

    path: str  # where the attempt wrote it, on the output's file system
    folder: str  # its hive folder under the output ("" when not partitioned), escaped as Spark escapes it
    partition: tuple[tuple[str, str | None], ...]  # (partition column, value as text; None: null)
    rows: int
    bytes: int
    stats: str | None = None  # Delta's statistics of the file (JSON), for a Delta table


@dataclass(frozen=True)
class WriteRecord:
    """What one split, group or call wrote: its files and the schema of its frames (partition
    columns included; None when the function returned nothing to take a schema from)."""

    files: tuple[FileRecord, ...]
    schema: pa.Schema | None

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


@dataclass(frozen=True)
class WriteReport:
    """What a job with ``output=`` wrote: ``rows``, ``files`` and ``bytes`` added by this job, the
    ``destination`` (the output's path) and, for a Delta table, the ``version`` it committed (None
    for Parquet). Reachable as ``.report`` of the data source the job returns."""

    rows: int
    files: int
    bytes: int
    destination: str
    version: int | None = None

    def __str__(self) -> str:
        where = self.destination + (f" (version {self.version})" if self.version is not None else "")
        return f"wrote {self.rows:,} rows in {self.files:,} files ({self.bytes:,} bytes) to {where}"
