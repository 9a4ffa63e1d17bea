"""exec_by's groups where no engine forms them: the rows read into the driver and grouped there,
the order of groups (by key, nulls first, as Spark sorts), and the user's ``filter`` on the keys frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sparkdist import _worker
from sparkdist._checks import name_of
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError
from sparkdist.sources import DataSource, FrameSplit, KeyGroup

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Chooser", "group_in_driver", "order"]


def group_in_driver(source: DataSource, keys: tuple[str, ...]) -> list[KeyGroup]:
    """The source's rows read into the driver and grouped there (the local contexts; data that only
    the driver can read)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    frames = [chunk for split in source.plan(1) for chunk in split.chunks()]
    if not frames or not sum(len(f) for f in frames):
        return []
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    ids = frame.groupby(list(keys), dropna=False, sort=False).ngroup().to_numpy()
    by_group = np.argsort(ids, kind="stable")
    bounds = np.flatnonzero(np.diff(ids[by_group])) + 1
    members = np.split(by_group, bounds)
    firsts = [int(m[0]) for m in members]
    # key values typed as the source's schema says (pandas turns an int column with nulls into floats)
    schema = pa.schema([source.arrow_schema().field(k) for k in keys])
    key_rows = pa.Table.from_pandas(frame.iloc[firsts][list(keys)], schema=schema, preserve_index=False).to_pylist()
    return [
        KeyGroup(tuple(row[k] for k in keys), FrameSplit(frame.take(m)), len(m))
        for row, m in zip(key_rows, members, strict=True)
    ]


class Chooser:
    """exec_by's ``filter`` on the keys frame: the groups it keeps, as :func:`sparkdist._worker.same_keys`."""

    def __init__(self, filter_: Callable[[pd.DataFrame], pd.DataFrame], keys: tuple[str, ...]) -> None:
        self.filter, self.keys = filter_, keys

    def __call__(self, groups: list[tuple[Any, ...]], rows: list[int]) -> frozenset[tuple[Any, ...]]:
        import pandas as pd

        ranked = sorted(range(len(groups)), key=lambda i: order(groups[i]))
        frame = pd.DataFrame([groups[i] for i in ranked], columns=list(self.keys))
        frame["rows"] = pd.Series([rows[i] for i in ranked], dtype="int64")
        out = self.filter(frame.copy())
        name = name_of(self.filter)
        if not isinstance(out, pd.DataFrame):
            raise ArgumentTypeError(
                f"filter {name!r} must return a pandas DataFrame (the rows of the keys frame to keep), "
                f"got {type(out).__name__}"
            )
        missing = [k for k in self.keys if k not in out.columns]
        if missing:
            raise InvalidArgumentError(f"filter {name!r} returned a frame without the key columns {missing}")
        known = {_match(g): g for g in groups}
        chosen = [_match(k) for k in out[list(self.keys)].itertuples(index=False, name=None)]
        unknown = [k for k in chosen if k not in known]
        if unknown:
            raise InvalidArgumentError(
                f"filter {name!r} returned keys that are not groups of the data, e.g. {unknown[0]!r}: "
                "it must return a subset of the rows it was given"
            )
        return frozenset(_worker.same_keys(known[k]) for k in chosen)


def _match(keys: tuple[Any, ...]) -> tuple[Any, ...]:
    """Keys as the filter's frame may give them back: a null may come back as NaN or NaT."""
    return tuple(None if v is None or v != v else v for v in keys)


def order(keys: tuple[Any, ...]) -> tuple[Any, ...]:
    """Sort key of a group: by its key values, nulls first (as Spark sorts ascending)."""
    return tuple((0,) if v is None or v != v else (1, v) for v in keys)
