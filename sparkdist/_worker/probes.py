"""Small jobs that ask the executors about themselves: can they open these files, and how many
tasks can the cluster run at once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sparkdist._worker.common import executor_facts

if TYPE_CHECKING:
    import pyarrow as pa


def probe_files(filesystem: Any, paths: list[str], ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On an executor: can pyarrow reach these files here (open them and read a few bytes)? One row
    (ok, reason). A file that is there but damaged counts as reachable: reading it names it."""
    import pyarrow as pa

    for _ in ids:
        pass
    ok, reason = True, ""
    for path in paths:
        try:
            with filesystem.open_input_file(path) as fh:
                fh.read(4)
        except Exception as err:
            ok, reason = False, f"{type(err).__name__} opening '{path}' on {socket.gethostname()}: {err}"
            break
    yield pa.RecordBatch.from_pydict({"ok": [ok], "reason": [reason]})


def probe_slots(pause: float, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n, numPartitions=n)``: one row per task with the executor it ran
    on, that executor's cores and CPUs per task where known, and when the task started and ended
    (tasks pause a moment, so that concurrent ones overlap)."""
    import time

    import pyarrow as pa
    from pyspark import TaskContext

    for _ in ids:
        pass
    start = time.time()
    time.sleep(pause)
    eid, cores = executor_facts()
    tc = TaskContext.get()
    task_cpus = tc.cpus() if tc is not None and hasattr(tc, "cpus") else 1
    row = {
        "executor": [f"{socket.gethostname()}/{eid}"],
        "cores": [cores or 0],
        "task_cpus": [task_cpus or 1],
        "start": [start],
        "end": [time.time()],
    }
    yield pa.RecordBatch.from_pydict(
        row,
        schema=pa.schema(
            [("executor", pa.string()), ("cores", pa.int32()), ("task_cpus", pa.int32()),
             ("start", pa.float64()), ("end", pa.float64())]
        ),
    )  # fmt: skip


#: Schema of :func:`probe_slots`'s rows.
PROBE_SCHEMA = "executor string, cores int, task_cpus int, start double, end double"
