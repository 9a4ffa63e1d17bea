"""Results arriving on the driver, whatever the engine: result rows reassembled into outcomes,
counted against the context's ``max_result_size`` as they arrive, and folded in split order as
they come (as Spark's own ``RDD.reduce`` does on the driver).

The rows are ``(key, part, nparts, status, payload)``: a pickled outcome cut into parts. Where an
engine folds results on its executors instead (Spark's tree reduce), it sizes groups of consecutive
splits with :func:`group_size`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from sparkdist import _serde, _worker
from sparkdist._protocol import Outcome, Status
from sparkdist.errors import ResultTooLargeError

#: A result row: (key, part, nparts, status, payload).
Row = tuple[int, int, int, str, bytes]


def group_size(n_splits: int) -> int:
    """Splits per reduce group: ⌈√n⌉, so that both the groups and their count are about √n.

    >>> [group_size(n) for n in (1, 2, 4, 10, 100, 1000)]
    [1, 2, 2, 4, 10, 32]
    """
    return max(1, math.isqrt(n_splits - 1) + 1) if n_splits > 1 else 1


def assemble(rows: Iterable[Row], limit: int | None, what: str, *, until_error: bool = False) -> list[Outcome]:
    """Driver side: rebuild outcomes from result rows ``(key, part, nparts, status, payload)``.

    Payload bytes are counted against ``limit`` as they arrive, before anything is unpickled.
    With ``until_error`` the rows after the first complete failed outcome are not read.
    """
    budget = ResultBudget(limit)
    by_key: dict[int, list[tuple[int, str, bytes]]] = {}
    for key, part, nparts, status, payload in rows:
        budget.add(key, what, status, payload)
        by_key.setdefault(key, []).append((part, status, payload))
        if until_error and status == Status.ERROR and len(by_key[key]) == nparts:
            break
    out: list[Outcome] = []
    for key in sorted(by_key):
        pieces = sorted(by_key[key], key=lambda p: p[0])
        out.append(Outcome(key, Status(pieces[0][1]), _serde.loads(_serde.join_parts([p[2] for p in pieces]))))
    return out


class ResultBudget:
    """Counts the bytes of results arriving on the driver against the context's max_result_size.

    >>> budget = ResultBudget(1000)
    >>> budget.add(0, "split", "ok", bytes(600))
    >>> try:
    ...     budget.add(1, "split", "ok", bytes(600))
    ... except ResultTooLargeError as err:
    ...     print(err.size, err.limit, err.setting)
    1200 1000 max_result_size
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.total = 0

    def add(self, key: int, what: str, status: str, payload: bytes) -> None:
        """Count one arriving (pickled) piece; raise when it is a result refused on the worker or
        the total passes the limit."""
        if status == Status.TOO_LARGE:
            size = int(_serde.loads(payload))
            raise ResultTooLargeError(
                f"the result of {what} {key} is {format_bytes(size)}, more than max_result_size="
                f"{format_bytes(self.limit)}; it was not sent to the driver. {_ADVICE}",
                limit=self.limit,
                size=size,
            )
        self.total += len(payload)
        if self.limit is not None and self.total > self.limit:
            raise ResultTooLargeError(
                f"the results coming back to the driver passed max_result_size={format_bytes(self.limit)} "
                f"({format_bytes(self.total)} had arrived by {what} {key}); the job was stopped. {_ADVICE}",
                limit=self.limit,
                size=self.total,
            )


_ADVICE = (
    "Return less from each call, combine results on the workers (distribute_job's reduce=), or raise the "
    "limit: the compute context's max_result_size (for example ctx.max_result_size = '4g'; None turns it off)."
)


def format_bytes(n: int | None) -> str:
    """Human-readable size.

    >>> format_bytes(1000), format_bytes(3 << 20), format_bytes(1 << 30), format_bytes(None)
    ('1000 bytes', '3.0 MiB', '1.0 GiB', 'unlimited')
    """
    if n is None:
        return "unlimited"
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def fold_rows(rows: Iterable[Row], reduce: Callable[[Any, Any], Any], limit: int | None) -> list[Outcome]:
    """Fold result rows on the driver, in split order, as they arrive. Rows that come in split
    order (Spark Connect streams partitions in order) leave about one partial in memory at a time.
    Every partial travels to the driver, so every one counts against ``limit``; ``reduce`` is the
    driver's own (the user's function, never anything a worker sent)."""
    budget = ResultBudget(limit)
    parts: dict[int, list[tuple[int, str, bytes]]] = {}
    ready: dict[int, Outcome] = {}
    acc: Outcome | None = None
    next_split = 0
    for key, part, nparts, status, payload in rows:
        budget.add(key, "split", status, payload)
        pieces = parts.setdefault(key, [])
        pieces.append((part, status, payload))
        if len(pieces) < nparts:
            continue
        del parts[key]
        pieces.sort(key=lambda p: p[0])
        ready[key] = Outcome(key, Status(pieces[0][1]), _serde.loads(_serde.join_parts([p[2] for p in pieces])))
        while next_split in ready:
            outcome = ready.pop(next_split)
            next_split += 1
            acc = _worker.fold(reduce, [acc, outcome] if acc is not None else [outcome])
            if acc is not None and acc.status in (Status.ERROR, Status.TOO_LARGE):
                return [acc]
    if ready:  # a split missing before these (every split sends an outcome, so not expected): fold the rest
        acc = _worker.fold(reduce, [*([acc] if acc is not None else []), *(o for _, o in sorted(ready.items()))])
    return [acc] if acc is not None else []
