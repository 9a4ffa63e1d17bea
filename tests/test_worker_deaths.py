"""The worker-death table: every way a user's function can end its worker — sys.exit(n), os._exit(n),
SIGKILL of its own process (what the out-of-memory killer does), MemoryError, RecursionError,
KeyboardInterrupt — in distribute_job, exec_job (continue_on_failure True and False) and
pema_compute, in every context. Each gives a sparkdist error (or a TaskError in its call's slot)
naming the kind of death, the function, the split or call and the host; the caller's process
survives; the same context then runs a correct job.

In a worker, os._exit(n) in the function ends its call (a SystemExit naming os._exit), not the worker;
SIGKILL ends the worker, which is named as died. Where the function runs in the caller's own process
(LocalComputeContext), os._exit and SIGKILL end that process, as they would without sparkdist, so they
are not in its table; there a KeyboardInterrupt is the caller's own Ctrl-C and stops the job as Python does.
"""

from __future__ import annotations

import os
import re
import signal
import sys

import pandas as pd
import pytest

import sparkdist as sd
from sparkdist.pema import PemaAlgorithm, pema_compute

#: kind -> (the exception type a caught death reports, or None when the worker process ends)
KINDS = {
    "sys.exit": "SystemExit",
    "MemoryError": "MemoryError",
    "RecursionError": "RecursionError",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "os._exit": "SystemExit",  # caught in workers: the call fails, naming os._exit(3)
    "SIGKILL": None,
}


def die(kind: str) -> None:
    if kind == "sys.exit":
        sys.exit(3)
    if kind == "os._exit":
        os._exit(3)
    if kind == "SIGKILL":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "MemoryError":
        raise MemoryError
    if kind == "RecursionError":

        def deeper(n: int) -> int:
            return deeper(n + 1) + 1

        deeper(0)
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt


def dying_split(split: pd.DataFrame, kind: str) -> int:
    if (split["k"] == 3).any():
        die(kind)
    return len(split)


def dying_call(i: int, kind: str) -> int:
    if i == 1:
        die(kind)
    return i * 10


class DyingAlgorithm(PemaAlgorithm):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def initialize(self) -> None:
        self.rows = 0

    def process_data(self, chunk: pd.DataFrame) -> None:
        if (chunk["k"] == 3).any():
            die(self.kind)
        self.rows += len(chunk)

    def update_results(self, other: DyingAlgorithm) -> None:
        self.rows += other.rows

    def process_results(self) -> int:
        return self.rows


def applies(ctx: object, kind: str) -> bool:
    in_process = isinstance(ctx, sd.LocalComputeContext)
    return not (in_process and kind in ("os._exit", "SIGKILL", "KeyboardInterrupt"))


def check_job_error(err: BaseException, kind: str, what: str) -> None:
    """A JobError that names the kind of death, the function and the split or call, and a host."""
    assert isinstance(err, sd.JobError), repr(err)
    text = str(err)
    expected = KINDS[kind]
    if expected is None:
        assert isinstance(err, sd.WorkerDiedError), text
        assert "died" in text and re.search(r"\bon \S+ \(", text), text
    else:
        assert err.remote_type == expected, text
        assert expected in text and re.search(r"\bon \S+ \(", text), text
    if kind == "os._exit":
        assert "os._exit(3)" in text, text
    assert what in text, text


FRAME = pd.DataFrame({"k": list(range(8)) * 50})


# local-cluster and remote("local[2]") run the same worker code paths as standalone and the Connect
# server; the table runs in these (CI's 30-minute budget)
@pytest.mark.modes("none", "local", "standalone", "connect-server")
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_dying_function_is_named_and_the_context_goes_on(ctx, kind, spark_mode):
    if not applies(ctx, kind):
        pytest.skip(f"{kind} in the caller's own process ends or interrupts it, as without sparkdist")
    fatal = KINDS[kind] is None
    # on a cluster master Spark retries a task whose worker died (spark.task.maxFailures): there a
    # fatal death is checked in distribute_job and exec_job only (the rest takes the same path)
    full = not (fatal and spark_mode in ("cluster", "standalone", "connect-server"))

    with pytest.raises(sd.JobError) as info:
        sd.distribute_job(dying_split, FRAME, kind, compute_context=ctx)
    check_job_error(info.value, kind, "'dying_split'")
    assert "split" in str(info.value)

    if fatal:  # the worker is gone with the call's result: the job fails, naming the call
        with pytest.raises(sd.WorkerDiedError) as info:
            sd.exec_job(dying_call, kind, elem_args=[0, 1, 2], continue_on_failure=True, compute_context=ctx)
        check_job_error(info.value, kind, "'dying_call'")
    else:
        with pytest.warns(RuntimeWarning, match="1 of 3 calls"):
            got = sd.exec_job(dying_call, kind, elem_args=[0, 1, 2], continue_on_failure=True, compute_context=ctx)
        assert got[0] == 0 and got[2] == 20
        assert isinstance(got[1], sd.TaskError) and got[1].remote_type == KINDS[kind]
        assert got[1].index == 1 and got[1].host and KINDS[kind] in str(got[1])

    if full:
        with pytest.raises(sd.JobError) as info:
            sd.exec_job(dying_call, kind, elem_args=[0, 1, 2], continue_on_failure=False, compute_context=ctx)
        check_job_error(info.value, kind, "call 1 of 'dying_call'" if not fatal else "'dying_call'")

        with pytest.raises(sd.JobError) as info:
            pema_compute(DyingAlgorithm(kind), FRAME, compute_context=ctx)
        check_job_error(info.value, kind, "split")

    # the caller's process is here, and the context runs a correct job
    assert sd.distribute_job(len, FRAME, reduce=lambda a, b: a + b, compute_context=ctx) == len(FRAME)
    assert sd.exec_job(dying_call, "none", elem_args=[0, 1, 2], compute_context=ctx) == [0, 10, 20]


def test_keyboard_interrupt_in_the_callers_process_stops_the_job():
    # LocalComputeContext runs in the caller's process: a KeyboardInterrupt is Ctrl-C there
    with pytest.raises(KeyboardInterrupt):
        sd.exec_job(dying_call, "KeyboardInterrupt", elem_args=[0, 1, 2], compute_context=sd.LocalComputeContext())
    assert sd.exec_job(dying_call, "none", elem_args=[0, 1, 2], compute_context=sd.LocalComputeContext()) == [0, 10, 20]
