"""Non-blocking jobs: wait=False, the Future-shaped Job, real cancel, progress, output."""

from __future__ import annotations

import concurrent.futures
import operator
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import sparkdist as sd
from sparkdist.pema import Summary, pema_compute


def sleepy(i, seconds, marks=None):
    time.sleep(seconds)
    if marks is not None:
        Path(marks, str(i)).touch()
    return i


def add(a, b):
    return a + b


def until(condition, seconds=20.0):
    """Poll ``condition`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_wait_false_returns_a_job_with_the_result(ctx):
    job = sd.exec_job(sleepy, 0.3, elem_args=[1, 2], wait=False, compute_context=ctx)
    assert isinstance(job, sd.Job) and job.id.startswith("sparkdist-job-")
    assert job.status in ("queued", "running") and not job.done()
    assert sd.get_jobs()[0] is job  # newest first
    assert job.result(timeout=120) == [1, 2]
    assert job.status == "finished" and job.done() and job.exception() is None
    done, total = job.progress
    assert done == total


def test_every_call_can_return_a_job(ctx, numbers):
    a = sd.distribute_job(len, numbers, reduce=add, wait=False, compute_context=ctx)
    b = pema_compute(Summary(["x"]), numbers, wait=False, compute_context=ctx)
    assert a.result(timeout=120) == len(numbers)
    assert b.result(timeout=120).loc["x", "count"] == numbers["x"].count()


def test_failed_job(ctx):
    job = sd.exec_job(sleepy, "not a number", elem_args=[1], continue_on_failure=False, wait=False, compute_context=ctx)
    assert isinstance(job.exception(timeout=120), sd.JobError)
    assert job.status == "failed"
    with pytest.raises(sd.JobError, match="TypeError"):
        job.result()


def test_done_callbacks_and_cancel_after_the_end(ctx):
    seen = []
    job = sd.exec_job(sleepy, 0.1, elem_args=[7], wait=False, compute_context=ctx)
    job.add_done_callback(lambda j: seen.append(j.status))
    job.wait(timeout=120)
    until(lambda: seen)
    assert seen == ["finished"]
    job.add_done_callback(lambda j: seen.append("late"))  # runs at once
    assert seen == ["finished", "late"]
    assert job.cancel() is False and job.status == "finished"


def test_result_timeout_leaves_the_job_running(ctx):
    job = sd.exec_job(sleepy, 1.5, elem_args=[3], wait=False, compute_context=ctx)
    with pytest.raises(TimeoutError, match="did not end within 0.05 s"):
        job.result(timeout=0.05)
    assert not job.done()
    assert job.result(timeout=120) == [3]


def test_as_completed_follows_the_finishing_order(ctx):
    slow = sd.exec_job(sleepy, 2.0, elem_args=["slow"], wait=False, compute_context=ctx)
    fast = sd.exec_job(sleepy, 0.1, elem_args=["fast"], wait=False, compute_context=ctx)
    assert [job.result()[0] for job in sd.as_completed([slow, fast], timeout=120)] == ["fast", "slow"]


def test_the_context_wait_setting_and_the_call_keyword(ctx):
    if isinstance(ctx, sd.SparkComputeContext):
        lazy = sd.SparkComputeContext(ctx.session, wait=False)
    elif isinstance(ctx, sd.LocalParallelComputeContext):
        lazy = ctx
        lazy.wait = False
    else:
        lazy = sd.LocalComputeContext(wait=False)
    try:
        job = sd.exec_job(pow, 2, elem_args=[3], compute_context=lazy)
        assert isinstance(job, sd.Job) and job.result(timeout=120) == [9]
        assert sd.exec_job(pow, 2, elem_args=[3], compute_context=lazy, wait=True) == [9]  # the call wins
    finally:
        lazy.wait = True


def test_wait_must_be_a_bool():
    with pytest.raises(sd.ArgumentTypeError, match="wait must be True, False or None"):
        sd.exec_job(pow, 2, elem_args=[3], wait="no")
    with pytest.raises(sd.ArgumentTypeError, match="wait must be True or False"):
        sd.LocalComputeContext(wait=1)
    with pytest.raises(sd.ArgumentTypeError, match="progress must be True, False or None"):
        sd.distribute_job(len, [], progress="yes")


def test_cancel_really_stops_the_work(ctx, tmp_path, spark_mode):
    job = sd.exec_job(
        sleepy, 0.5, str(tmp_path), elem_args=list(range(40)), task_chunk_size=1, wait=False, compute_context=ctx
    )
    assert until(lambda: job.status == "running" and len(list(tmp_path.iterdir())) >= 1)
    assert job.cancel() is True
    assert job.wait(timeout=30)
    assert job.status == "canceled" and job.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        job.result()
    ran = len(list(tmp_path.iterdir()))
    time.sleep(1.5)
    assert len(list(tmp_path.iterdir())) <= ran + 2 < 40  # nothing keeps running in the background
    if isinstance(ctx, sd.SparkComputeContext) and not spark_mode.startswith("connect"):
        tracker = ctx.session.sparkContext.statusTracker()
        assert until(lambda: not tracker.getActiveJobsIds(), 10)
    assert sd.exec_job(pow, 2, elem_args=[5], compute_context=ctx) == [25]  # the context runs the next job normally


@pytest.mark.modes("none")
def test_cancelling_one_job_does_not_cost_another_its_result(tmp_path, numbers):
    # LocalParallel ends its shared pool to stop a cancelled job's running calls; the other job's
    # lost work is run again on a fresh pool
    ctx = sd.LocalParallelComputeContext(2)
    try:
        victim = sd.exec_job(
            sleepy, 0.5, str(tmp_path), elem_args=list(range(20)), task_chunk_size=1, wait=False, compute_context=ctx
        )
        calls = sd.exec_job(sleepy, 0.1, elem_args=list(range(6)), task_chunk_size=1, wait=False, compute_context=ctx)
        split_sums = sd.distribute_job(
            lambda s: int(s["k"].sum()), numbers, reduce=operator.add, wait=False, compute_context=ctx
        )
        assert until(lambda: len(list(tmp_path.iterdir())) >= 1)
        assert victim.cancel()
        assert calls.result(timeout=60) == list(range(6))
        assert split_sums.result(timeout=60) == int(numbers["k"].sum())
        assert victim.wait(30) and victim.status == "canceled"
    finally:
        ctx.close()


def test_cancel_a_distribute_job(ctx, numbers):
    def slow_len(split):
        time.sleep(60)
        return len(split)

    if isinstance(ctx, sd.LocalComputeContext):
        pytest.skip("in-process work stops at the next split; a 60 s split would hold the test")
    job = sd.distribute_job(slow_len, numbers, wait=False, compute_context=ctx)
    assert until(lambda: job.status == "running")
    time.sleep(1.0)
    assert job.cancel()
    assert job.wait(timeout=30) and job.status == "canceled"


def test_ctrl_c_cancels_the_spark_work_before_reraising(spark, spark_ctx, spark_mode, tmp_path):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()

    def press_ctrl_c_once_calls_ran():
        if until(lambda: stop.is_set() or len(list(tmp_path.iterdir())) >= 2, 60) and not stop.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=press_ctrl_c_once_calls_ran, daemon=True)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sd.exec_job(
                sleepy, 1.0, str(tmp_path), elem_args=list(range(40)), task_chunk_size=1, compute_context=spark_ctx
            )
    finally:
        stop.set()
        timer.join(timeout=5)
        signal.signal(signal.SIGINT, previous)
    assert sd.get_jobs()[0].status == "canceled"
    ran = len(list(tmp_path.iterdir()))
    time.sleep(2.5)
    assert len(list(tmp_path.iterdir())) <= ran + 2 < 40
    if not spark_mode.startswith("connect"):  # Connect has no status tracker on the client
        assert until(lambda: not spark.sparkContext.statusTracker().getActiveJobsIds(), 10)
    assert sd.exec_job(pow, 2, elem_args=[5], compute_context=spark_ctx) == [25]


def test_progress_bar_when_asked_and_only_then(spark_ctx, capsys):
    assert sd.exec_job(
        sleepy, 0.6, elem_args=[1, 2, 3, 4], task_chunk_size=1, progress=True, compute_context=spark_ctx
    ) == [1, 2, 3, 4]
    assert "exec_job(sleepy)" in capsys.readouterr().err
    sd.exec_job(sleepy, 0.1, elem_args=[1], progress=False, compute_context=spark_ctx)
    assert "exec_job(sleepy)" not in capsys.readouterr().err
    job = sd.exec_job(sleepy, 0.5, elem_args=[1, 2, 3, 4], task_chunk_size=1, wait=False, compute_context=spark_ctx)
    job.result(timeout=120)
    assert job.progress == (4, 4)


def chatty(i):
    print(f"line from {i}")
    return i


def test_output_of_a_job(ctx, capsys):
    job = sd.exec_job(chatty, elem_args=[0, 1], console_output=True, wait=False, compute_context=ctx)
    job.result(timeout=120)
    assert job.output().splitlines() == ["[0] line from 0", "[1] line from 1"]
    assert "line from" not in capsys.readouterr().out


def test_jobs_stay_listed_after_their_session_stopped(tmp_path):
    import subprocess
    import sys

    code = """
import sparkdist as sd
ctx = sd.SparkComputeContext(master="local[1]")
job = sd.exec_job(pow, 2, elem_args=[3], wait=False, compute_context=ctx)
job.result(timeout=120)
ctx.stop()
print("LISTED", [(j.id, j.status) for j in sd.get_jobs()])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "LISTED [('sparkdist-job-1', 'finished')]" in out.stdout, out.stderr[-2000:]


def test_a_job_is_a_concurrent_futures_future(ctx):
    import asyncio

    jobs = [sd.exec_job(sleepy, 0.2, elem_args=[i], wait=False, compute_context=ctx) for i in range(3)]
    assert all(isinstance(job, concurrent.futures.Future) for job in jobs)
    done, not_done = concurrent.futures.wait(jobs, timeout=120)
    assert len(done) == 3 and not not_done
    more = [sd.exec_job(sleepy, 0.1, elem_args=[i], wait=False, compute_context=ctx) for i in range(3)]
    assert sorted(job.result() for job in concurrent.futures.as_completed(more, timeout=120)) == [[0], [1], [2]]

    async def main():
        job = sd.exec_job(sleepy, 0.1, elem_args=[7], wait=False, compute_context=ctx)
        return await asyncio.wrap_future(job)

    assert asyncio.run(main()) == [7]


def test_cancelling_a_running_job_wakes_futures_waiters(ctx, tmp_path):
    job = sd.exec_job(sleepy, 2.0, str(tmp_path), elem_args=list(range(40)), wait=False, compute_context=ctx)
    assert until(lambda: job.status == "running")
    waiter = concurrent.futures.ThreadPoolExecutor(1).submit(concurrent.futures.wait, [job], 120)
    time.sleep(0.3)
    assert job.cancel()
    done, _ = waiter.result(timeout=120)
    assert job in done and job.cancelled() and job.status == "canceled"
    with pytest.raises(concurrent.futures.CancelledError, match=job.id):
        job.result()
    assert len(list(tmp_path.iterdir())) < 40


def test_jobs_that_do_not_wait_share_a_bounded_set_of_threads():
    before = threading.active_count()
    jobs = [sd.exec_job(sleepy, 0.05, elem_args=[i], wait=False) for i in range(3 * sd.jobs.MAX_RUNNING_JOBS)]
    peak = threading.active_count()
    assert [job.result(timeout=120) for job in jobs] == [[i] for i in range(3 * sd.jobs.MAX_RUNNING_JOBS)]
    assert peak - before <= sd.jobs.MAX_RUNNING_JOBS


def test_progress_counts_calls_and_splits_and_never_goes_backwards(ctx, parquet_dir):
    seen = []
    job = sd.exec_job(sleepy, 0.05, elem_args=list(range(30)), task_chunk_size=3, wait=False, compute_context=ctx)
    while not job.done():
        seen.append(job.progress)
        time.sleep(0.02)
    assert job.result(timeout=120) == list(range(30))
    assert job.progress == (30, 30)  # calls, not tasks
    assert all(total in (0, 30) for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # a reduce runs two Spark stages: still counted in splits, ending complete
    source = sd.ParquetData(parquet_dir)
    n_splits = source.validate(ctx).n_splits
    job = sd.distribute_job(len, source, reduce=add, wait=False, compute_context=ctx)
    seen = []
    while not job.done():
        seen.append(job.progress)
        time.sleep(0.02)
    assert job.result(timeout=120) == 20_000
    assert job.progress == (n_splits, n_splits)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_notebook_shells_count_as_interactive(monkeypatch):
    import sys
    import types

    from sparkdist import _console

    for module, name in (("ipykernel.zmqshell", "ZMQInteractiveShell"), ("dbruntime", "DatabricksShell"),
                         ("google.colab._shell", "Shell"), ("IPython.terminal", "Shell")):  # fmt: skip
        shell = type(name, (), {"__module__": module})()
        fake = types.ModuleType("IPython")
        fake.get_ipython = lambda shell=shell: shell  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "IPython", fake)
        monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
        assert _console.interactive() is (module != "IPython.terminal"), module
