"""Schemas of what the splits wrote: one agreed schema after safe widening, or an error naming the
split (or group, or call), the column and both types.

Safe widening: a null-typed column takes the other's type; integers of one signedness widen to the
wider one; floats to the wider float; ``string``/``large_string`` (and the binary twins) count as one
type. Nothing else changes type: an int column meeting a float one is a conflict.

>>> import pyarrow as pa
>>> widen(pa.int32(), pa.int64()), widen(pa.null(), pa.string()), widen(pa.float32(), pa.float64())
(DataType(int64), DataType(string), DataType(double))
>>> widen(pa.int64(), pa.float64()) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sparkdist.errors import SchemaConflictError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["agree", "cast_to", "widen"]


def _rank(t: pa.DataType) -> tuple[str, int] | None:
    """(family, width) of the types that widen within their family."""
    import pyarrow as pa

    for family, members in (
        ("int", (pa.int8(), pa.int16(), pa.int32(), pa.int64())),
        ("uint", (pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64())),
        ("float", (pa.float16(), pa.float32(), pa.float64())),
        ("string", (pa.string(), pa.large_string())),
        ("binary", (pa.binary(), pa.large_binary())),
    ):
        if t in members:
            return family, members.index(t)
    return None


def widen(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The type both ``a`` and ``b`` widen to safely, or None when there is none."""
    import pyarrow as pa

    if a.equals(b):
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    ra, rb = _rank(a), _rank(b)
    if ra is None or rb is None or ra[0] != rb[0]:
        return None
    return a if ra[1] >= rb[1] else b


def _merge(agreed: pa.Schema, schema: pa.Schema, label: str, first: str) -> pa.Schema:
    import pyarrow as pa

    mine, theirs = set(schema.names), set(agreed.names)
    if mine != theirs:
        missing, extra = sorted(theirs - mine), sorted(mine - theirs)
        said = "; ".join(
            part
            for part in (
                f"lacks column(s) {missing}" if missing else "",
                f"has extra column(s) {extra}" if extra else "",
            )
            if part
        )
        raise SchemaConflictError(
            f"the frames of {label} do not have the columns of {first}: it {said}. Every split's output must "
            "have the same columns; nothing was written to the output."
        )
    fields = []
    for field in agreed:
        other = schema.field(field.name).type
        wide = widen(field.type, other)
        if wide is None:
            raise SchemaConflictError(
                f"column {field.name!r} is {other} in the frames of {label} but {field.type} in {first}, and "
                f"neither widens safely to the other (int32->int64, float32->float64 and null-typed columns do). "
                "Cast it in the function so that every split returns one type; nothing was written to the output."
            )
        fields.append(pa.field(field.name, wide, field.nullable or schema.field(field.name).nullable))
    return pa.schema(fields, metadata=agreed.metadata)


def agree(schemas: Sequence[tuple[str, pa.Schema]], existing: pa.Schema | None = None) -> pa.Schema | None:
    """The one schema of ``(label, schema)`` pairs (in order) after safe widening, starting from the
    ``existing`` output's schema when appending; SchemaConflictError names what disagrees."""
    agreed, first = existing, "the existing output"
    for label, schema in schemas:
        if agreed is None:
            agreed, first = schema, label
            continue
        agreed = _merge(agreed, schema, label, first)
    return agreed


def cast_to(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the types of ``schema`` where they widen its own safely (columns that do not
    are left as they are, for the driver to name)."""
    import pyarrow as pa

    fields = []
    for field in table.schema:
        want = schema.field(field.name).type if field.name in schema.names else field.type
        wide = widen(field.type, want)
        fields.append(pa.field(field.name, want, field.nullable) if wide is not None and wide.equals(want) else field)
    target = pa.schema(fields, metadata=table.schema.metadata)
    return table if target.equals(table.schema) else table.cast(target)
