"""Small jobs that ask the executors about themselves: can they open these files, how many tasks
can the cluster run at once, and what do they run (executor_info, ping_executors)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sparkdist._worker import packages
from sparkdist._worker.common import executor_facts, place

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
    """Over ``range(n)`` in n tasks: one row per task with the executor it ran on, that executor's
    cores and CPUs per task where known, and when the task started and ended (tasks pause a moment,
    so that concurrent ones overlap)."""
    import time

    import pyarrow as pa

    for _ in ids:
        pass
    start = time.time()
    time.sleep(pause)
    eid, cores = executor_facts()
    task_cpus = place().task_cpus
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


# -- executor_info / ping_executors ------------------------------------------------------------------

#: The libraries that work travels with, as executor_info reports them (cloudpickle: the copy that
#: sparkdist pickles with, pyspark's own where pyspark is present).
LIBRARIES = ("pyspark", "pyarrow", "pandas", "numpy", "cloudpickle", "sparkdist")
#: Path parts of modules loaded from an archive put on the path for the job (``addPyFile``,
#: ``addArtifacts``, ``--py-files``, Spark's own ``python/lib/pyspark.zip``) rather than installed.
_ARCHIVES = (".zip", ".whl", ".egg")


def environment() -> dict[str, Any]:
    """On an executor, a pool worker or the driver: what this Python is and has. Never raises for a
    library that is missing (its version is None) and returns plain values only (str, int, float,
    None), which any Python and pickle version can read."""
    import os
    import platform
    import sys
    import time

    executor, cores = _where()
    row: dict[str, Any] = {
        "host": socket.gethostname(),
        "executor": executor,
        "pid": os.getpid(),
        "cores": cores,
        "memory": _jvm_memory(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    shipped = []
    for name in LIBRARIES:
        version, path = _library(name)
        row[name] = version
        if path and any(f"{ext}{os.sep}" in path for ext in _ARCHIVES):
            shipped.append(name)
    row["shipped"] = ", ".join(shipped)
    row["packages"] = ", ".join(packages.shipped())  # from packages= archives
    row["time"] = time.time()
    return row


def _where() -> tuple[str, int | None]:
    """(executor id, cores): the engine's for an engine's task ("driver" in local mode, where the driver's JVM
    runs the tasks), "local" in the driver's own process, "worker-<pid>" in a pool worker (1 core:
    it runs one call at a time)."""
    import multiprocessing
    import os

    from sparkdist._worker.common import jvm_cmdline

    if place().in_task:
        args = jvm_cmdline()
        if args and not any(a.endswith("CoarseGrainedExecutorBackend") for a in args):
            return "driver", None  # local mode: the driver's JVM runs the tasks (cores: its master's)
        return executor_facts()
    if multiprocessing.parent_process() is None:
        return "local", 1
    return f"worker-{os.getpid()}", 1


def _jvm_memory() -> str | None:
    """The heap of the JVM this worker serves: its ``-Xmx``, spelled as ``spark.executor.memory`` is
    (``-Xmx768M`` -> "768m")."""
    from sparkdist._worker.common import jvm_cmdline

    sizes = [a[4:].lower() for a in jvm_cmdline() if a.startswith("-Xmx")]
    return sizes[-1] if sizes else None


def _library(name: str) -> tuple[str | None, str | None]:
    """(version, file) of a library as this Python imports it; (None, None) when it cannot."""
    import importlib
    import sys

    try:
        if name == "cloudpickle":
            from sparkdist import _serde

            module = _serde.cloudpickle_module()
        else:
            module = sys.modules.get(name) or importlib.import_module(name)
    except Exception:  # missing, or broken here: reported as no version
        return None, None
    version = getattr(module, "__version__", None)
    return (str(version) if version is not None else None), getattr(module, "__file__", None)


def local_probe(probe: Callable[[], dict[str, Any]], folder: str, workers: int, wait: float) -> bytes:
    """Entry point of LocalParallel's workers for :meth:`ComputeContext.run_on_executors`: a short
    rendezvous (each worker notes its pid in ``folder`` and waits, at most ``wait`` seconds, until
    ``workers`` have), so that each of the pool's processes runs one of the ``workers`` probes."""
    import os
    import time

    from sparkdist import _serde

    with open(os.path.join(folder, str(os.getpid())), "w", encoding="utf-8"):
        pass
    deadline = time.monotonic() + wait
    while len(os.listdir(folder)) < workers and time.monotonic() < deadline:
        time.sleep(0.005)
    return _serde.dumps_result(probe())
