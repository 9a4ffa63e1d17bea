"""Row filters of Parquet sources, in pyarrow's syntax, parsed once and turned into a pyarrow
Expression (the Arrow engine) or a Spark Column (Spark's reader).

``[(column, op, value), ...]`` is a conjunction, ``[[...], [...]]`` a disjunction of them; ops are
``=``, ``==``, ``!=``, ``<``, ``>``, ``<=``, ``>=``, ``in``, ``not in``.

>>> f = Filters.parse([("year", ">=", 2020), ("kind", "in", ["a", "b"])])
>>> f.columns
['year', 'kind']
>>> str(f.to_arrow())
'((year >= 2020) and is_in(kind, {value_set=string:[\\n  "a",\\n  "b"\\n], null_matching_behavior=MATCH}))'
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist._protocol import ROW_MARKER
from sparkdist.errors import ColumnNotFoundError, InvalidArgumentError

if TYPE_CHECKING:
    import pyarrow.compute as pc
    from pyspark.sql import DataFrame

__all__ = ["Filters", "select_columns", "spark_column"]

_OPS = ("=", "==", "!=", "<", ">", "<=", ">=", "in", "not in")
_FORM = (
    "[(column, op, value), ...] or [[(column, op, value), ...], ...] with op one of "
    "=, ==, !=, <, >, <=, >=, in, not in, or a pyarrow Expression"
)

Term = tuple[str, str, Any]


@dataclass(frozen=True)
class Filters:
    """Parsed filters: a disjunction of conjunctions of terms, or a pyarrow Expression as given."""

    disjuncts: tuple[tuple[Term, ...], ...] = ()
    expression: Any = None  # a pyarrow Expression given as such

    @classmethod
    def parse(cls, filters: Any) -> Filters:
        """Check ``filters`` and parse them; InvalidArgumentError saying the expected form."""
        import pyarrow.compute as pc

        if isinstance(filters, pc.Expression):
            return cls(expression=filters)
        if not isinstance(filters, (list, tuple)) or not filters:
            raise InvalidArgumentError(f"filters must be non-empty: {_FORM}; got {filters!r}")
        groups = filters if all(isinstance(g, list) for g in filters) else [filters]
        disjuncts = []
        for group in groups:
            if not isinstance(group, (list, tuple)) or not group:
                raise InvalidArgumentError(f"filters must be {_FORM}; got {filters!r}")
            disjuncts.append(tuple(_term(t, filters) for t in group))
        return cls(disjuncts=tuple(disjuncts))

    @property
    def columns(self) -> list[str]:
        """The columns the terms name (none for a pyarrow Expression)."""
        return list(dict.fromkeys(col for conj in self.disjuncts for col, _, _ in conj))

    def check_columns(self, names: Sequence[str]) -> None:
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise ColumnNotFoundError(
                f"filters name columns {missing} that are not in the data; available columns: {list(names)}"
            )

    def to_arrow(self) -> pc.Expression:
        """The filters as a pyarrow Expression."""
        import pyarrow.compute as pc

        if self.expression is not None:
            return self.expression
        result = None
        for conj in self.disjuncts:
            term = None
            for col, op, value in conj:
                t = _arrow_term(pc.field(col), op, value)
                term = t if term is None else term & t
            result = term if result is None else result | term
        assert result is not None
        return result

    def to_spark(self) -> Any:
        """The filters as a Spark Column; InvalidArgumentError for a pyarrow Expression."""
        if self.expression is not None:
            raise InvalidArgumentError(
                "Spark's reader needs filters as [(column, op, value), ...], not a pyarrow Expression"
            )
        result = None
        for conj in self.disjuncts:
            term = None
            for col, op, value in conj:
                t = _spark_term(spark_column(col), op, value)
                term = t if term is None else term & t
            result = term if result is None else result | term
        return result


def _term(t: Any, filters: Any) -> Term:
    if not isinstance(t, (tuple, list)) or len(t) != 3 or not isinstance(t[0], str) or t[1] not in _OPS:
        raise InvalidArgumentError(f"filters must be {_FORM}; got the term {t!r} in {filters!r}")
    col, op, value = t
    if op in ("in", "not in") and (isinstance(value, (str, bytes)) or not hasattr(value, "__iter__")):
        raise InvalidArgumentError(f"filter ({col!r}, {op!r}, ...) needs a list of values, got {value!r}")
    return (col, op, list(value) if op in ("in", "not in") else value)


_COMPARE = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
}  # fmt: skip


def _arrow_term(field: Any, op: str, value: Any) -> Any:
    import pyarrow as pa

    if op in ("in", "not in"):
        inside = field.isin(pa.array(value))
        return ~inside if op == "not in" else inside
    return _COMPARE[op](field, value)


def _spark_term(column: Any, op: str, value: Any) -> Any:
    if op in ("in", "not in"):
        inside = column.isin(value)
        return ~inside if op == "not in" else inside
    return _COMPARE[op](column, value)


def spark_column(name: str) -> Any:
    """A Spark Column for the column named ``name`` exactly (dots, spaces and backticks quoted)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def select_columns(df: DataFrame, columns: Sequence[str] | None) -> DataFrame:
    """``df`` with only ``columns`` (all of them for None), found by their exact names: columns are
    picked by position, so names Spark would resolve otherwise (``a.b``, a backtick, names that
    differ only in case) are kept as they are. An empty selection keeps the row count: Spark sends
    no rows for a DataFrame without columns, so a marker column the workers drop
    (:data:`sparkdist._protocol.ROW_MARKER`) stands in."""
    from pyspark.sql import functions as F

    if columns is None:
        return df
    if not columns:
        return df.select(F.lit(True).alias(ROW_MARKER))
    names = list(df.columns)
    by_position = [f"_{i}" for i in range(len(names))]
    return df.toDF(*by_position).select(*[F.col(by_position[names.index(c)]).alias(c) for c in columns])
