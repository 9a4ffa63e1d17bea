"""A name given as ``data``: a string in the form of a table name (``"sales"``, ``"db.sales"``,
``"main.sales.orders"``) that is not an existing path. What it is depends on the compute context, so
it is settled in :meth:`NamedData.prepare`: in a Spark context, a table of the session's catalog
(``spark.table(name)``); otherwise, or when the catalog has no such table, one error that says both
were tried. A string that is an existing path never comes here: it is a path.

>>> NamedData.from_input("main.sales.orders")
NamedData('main.sales.orders')
>>> NamedData.from_input("data/part-0.parquet") is None
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sparkdist._current import get_compute_context
from sparkdist.errors import DataNotFoundError
from sparkdist.sources.base import DataSource, LocalSplit, ReadingContext, ValidationReport
from sparkdist.sources.frames import TABLE_NAME, SparkData
from sparkdist.sources.paths import one_line

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

__all__ = ["NamedData"]


class NamedData(DataSource):
    """A path or a table name, decided for the compute context in :meth:`prepare` (internal: pass the
    string itself as ``data``, or ``SparkData(name)`` for a table)."""

    def __init__(self, name: str, *, columns: Sequence[str] | None = None) -> None:
        self.name = name
        self.columns = None if columns is None else tuple(columns)

    @classmethod
    def from_input(cls, data: Any) -> NamedData | None:
        """``data`` when it is a str in the form of a table name and no file or folder of that name
        exists here (the inputs registry), else None: a path is read as a path."""
        if not isinstance(data, str) or not TABLE_NAME.match(data) or os.path.exists(data):
            return None
        return cls(data)

    def prepare(self, context: ReadingContext) -> DataSource:
        """``spark.table(name)`` when the context's session has the table; else one error naming
        both attempts."""
        session = context.spark_session if context.is_distributed else None
        as_table = "a local compute context has no Spark catalog (use a SparkComputeContext, or SparkData(name))"
        if session is not None:
            found, why = _table_exists(session, self.name)
            if found:
                return SparkData(self.name, columns=self.columns).prepare(context)
            as_table = f"the session's catalog has no table {self.name!r}{why}"
        raise DataNotFoundError(
            f"data {self.name!r} is neither a path nor a table:\n"
            f"  as a path: '{os.path.abspath(self.name)}' does not exist\n"
            f"  as a table: {as_table}"
        )

    def _resolved(self) -> DataSource:
        return self.prepare(get_compute_context())

    def readable_on(self, session: SparkSession | None) -> bool:
        return session is not None and _table_exists(session, self.name)[0]

    def column_names(self) -> list[str]:
        return self._resolved().column_names()

    def with_columns(self, columns: Sequence[str] | None) -> NamedData:
        return NamedData(self.name, columns=columns if columns is not None else self.columns)

    def arrow_schema(self) -> pa.Schema:
        return self._resolved().arrow_schema()

    def plan(self, slots: int) -> list[LocalSplit]:
        return self._resolved().plan(slots)

    def describe(self, slots: int) -> ValidationReport:
        return self._resolved().describe(slots)

    def __repr__(self) -> str:
        return f"NamedData({self.name!r})"


def _table_exists(session: SparkSession, name: str) -> tuple[bool, str]:
    """Whether the session's catalog has the table, and, when asking failed, why (for the error)."""
    try:
        return bool(session.catalog.tableExists(name)), ""
    except Exception as err:  # noqa: BLE001 - a malformed name, an unreachable catalog: not a table here
        return False, f" ({one_line(err)})"
