"""What the log of a Delta table says holds for all rows of a file (its partition values and, from
its statistics, each column's bounds and nulls), as a pyarrow Expression: files whose guarantee
rules the filters out are never opened, and pyarrow decides that as it does for row groups.

The statistics are used only where they bound the valid values exactly as the protocol promises:
strings are truncated prefixes and left out; timestamps are truncated to milliseconds and widened
by one; floats are left out where a filter could match NaN (``!=``, ``not in``, an Expression),
which statistics do not count; a column's bounds are used with its nulls only for filters given as
tuples (which never match a null), as pyarrow cannot simplify ``bounds or is_null``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

    from sparkdist.sources.delta_log import DeltaFile
    from sparkdist.sources.filters import Filters

__all__ = ["guarantee", "skip_files"]

_MS = datetime.timedelta(milliseconds=1)


def guarantee(f: DeltaFile, schema: pa.Schema, filters: Filters | None) -> Any:
    """The expression that holds for every valid row of ``f``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    terms = []
    for name, value in f.partition.items():
        if name in schema.names:
            field = pc.field(name)
            terms.append(field.is_null() if value is None else field == pa.scalar(value, schema.field(name).type))
    negated = (
        filters is None
        or filters.expression is not None
        or any(op in ("!=", "not in") for conj in filters.disjuncts for _, op, _ in conj)
    )
    tuples = filters is not None and filters.expression is None
    for name, (low, high, nulls) in f.stats.items():
        if name not in schema.names or name in f.partition:
            continue
        typ = schema.field(name).type
        field = pc.field(name)
        if nulls is not None and f.rows is not None and nulls == f.rows:
            terms.append(field.is_null())
            continue
        if low is None or high is None or not _bounded(typ, negated):
            continue
        if not (nulls == 0 or tuples):
            continue
        if pa.types.is_timestamp(typ):
            low, high = low - _MS, high + _MS
        terms.append((field >= pa.scalar(low, typ)) & (field <= pa.scalar(high, typ)))
    if not terms:
        return pc.scalar(True)
    out = terms[0]
    for t in terms[1:]:
        out = out & t
    return out


def _bounded(typ: pa.DataType, negated: bool) -> bool:
    import pyarrow as pa

    if pa.types.is_integer(typ) or pa.types.is_date(typ) or pa.types.is_timestamp(typ):
        return True
    return pa.types.is_floating(typ) and not negated


def skip_files(
    files: Sequence[DeltaFile], guarantees: Sequence[Any], expression: Any, schema: pa.Schema, fs: pafs.FileSystem
) -> list[int]:
    """The indexes of ``files`` whose guarantee does not rule ``expression`` out."""
    import pyarrow.dataset as pads

    fmt = pads.ParquetFileFormat()
    fragments = [
        fmt.make_fragment(f.path, filesystem=fs, partition_expression=g) for f, g in zip(files, guarantees, strict=True)
    ]
    index = {f.path: i for i, f in enumerate(files)}  # a path is active once in a snapshot
    dataset = pads.FileSystemDataset(fragments, schema, fmt, fs)
    return sorted(index[frag.path] for frag in dataset.get_fragments(filter=expression))
