"""exec_job: the same results in every compute context (run once per context kind)."""

from __future__ import annotations

import random
import threading
import time
import warnings

import numpy as np
import pytest

import sparkdist as sd


def power(base, exp=2, *, plus=0):
    return base**exp + plus


def draw(i):
    """Uses all three random sources a user might touch."""
    return (i, random.random(), float(np.random.random()), int(sd.task_rng().integers(1 << 40)))


def test_elem_args_entries(ctx):
    # anything -> first positional; tuple -> positionals; dict -> keywords; shared args come after
    assert sd.exec_job(power, elem_args=[2, 3], compute_context=ctx) == [4, 9]
    assert sd.exec_job(power, 3, elem_args=[2, 3], compute_context=ctx) == [8, 27]
    assert sd.exec_job(power, elem_args=[(2, 3), (3, 3)], plus=1, compute_context=ctx) == [9, 28]
    assert sd.exec_job(power, elem_args=[{"base": 5}, {"base": 2, "exp": 5}], compute_context=ctx) == [25, 32]


def test_named_calls_give_a_dict_in_the_same_order(ctx):
    got = sd.exec_job(power, elem_args={"z": 1, "a": 2, "m": (3, 3)}, compute_context=ctx)
    assert got == {"z": 1, "a": 4, "m": 27} and list(got) == ["z", "a", "m"]


def test_times_to_run(ctx):
    assert sd.exec_job(lambda: 7, times_to_run=5, compute_context=ctx) == [7] * 5
    assert sd.exec_job(power, elem_args=[1, 2], times_to_run=2, compute_context=ctx) == [1, 4]
    assert sd.exec_job(lambda: 1, compute_context=ctx) == [1]


@pytest.mark.parametrize("chunk", [None, 1, 3, 7, 100])
def test_many_calls_in_order_whatever_the_chunking(ctx, chunk):
    assert sd.exec_job(power, elem_args=list(range(50)), task_chunk_size=chunk, compute_context=ctx) == [
        i * i for i in range(50)
    ]


def test_seeded_streams_do_not_depend_on_context_or_chunking(ctx):
    reference = sd.exec_job(draw, elem_args=list(range(12)), rng_seed=2024, compute_context=sd.LocalComputeContext())
    for chunk in (1, 5, None):
        got = sd.exec_job(draw, elem_args=list(range(12)), rng_seed=2024, task_chunk_size=chunk, compute_context=ctx)
        assert got == reference
    assert len({r[1] for r in reference}) == 12 and len({r[3] for r in reference}) == 12  # streams differ per call
    other = sd.exec_job(draw, elem_args=list(range(12)), rng_seed=2025, compute_context=ctx)
    assert other != reference


def test_seeding_leaves_the_callers_random_state_alone():
    random.seed(1)
    np.random.seed(1)
    expect = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    sd.exec_job(draw, elem_args=[0, 1], rng_seed=5, compute_context=sd.LocalComputeContext())
    assert (random.random(), np.random.random()) == expect


def test_task_rng_outside_a_call_is_an_error():
    with pytest.raises(sd.SparkDistError, match="only be called inside a function run by exec_job"):
        sd.task_rng()


def flaky(i):
    if i % 3 == 0:
        raise ValueError(f"bad input {i}")
    return i


def test_failures_are_records_with_one_warning(ctx):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = sd.exec_job(flaky, elem_args=list(range(7)), task_chunk_size=2, compute_context=ctx)
    summary = [w for w in caught if "calls of 'flaky' failed" in str(w.message)]
    assert len(summary) == 1 and "3 of 7 calls" in str(summary[0].message)
    assert [g for g in got if not isinstance(g, sd.TaskError)] == [1, 2, 4, 5]
    err = got[3]
    assert isinstance(err, sd.TaskError) and isinstance(err, sd.SparkDistError)
    assert (err.index, err.remote_type, err.remote_message) == (3, "ValueError", "bad input 3")
    assert "in flaky" in err.remote_traceback and err.host


def test_stop_on_first_failure(ctx):
    # the first failure to happen wins; on Spark two tasks fail (calls 0 and 6) and either may be first
    with pytest.raises(sd.JobError, match=r"call [036] of 'flaky' failed with ValueError: bad input [036]") as info:
        sd.exec_job(flaky, elem_args=list(range(7)), continue_on_failure=False, compute_context=ctx)
    assert info.value.remote_type == "ValueError" and info.value.split in (0, 3, 6)


def test_named_failure_carries_its_name(ctx):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = sd.exec_job(flaky, elem_args={"ok": 1, "bad": 3}, compute_context=ctx)
    assert got["ok"] == 1 and isinstance(got["bad"], sd.TaskError) and got["bad"].name == "bad"


def chatty(i):
    print(f"hello from {i}")
    return i


def test_console_output_shown_with_call_prefix(ctx, capsys):
    assert sd.exec_job(chatty, elem_args=[0, 1, 2], console_output=True, compute_context=ctx) == [0, 1, 2]
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "hello" in line] == [f"[{i}] hello from {i}" for i in range(3)]


def test_console_output_off_shows_nothing(ctx, capfd):
    sd.exec_job(chatty, elem_args=[0, 1, 2], compute_context=ctx)
    assert "hello from" not in capfd.readouterr().out


def test_console_output_of_named_calls(ctx, capsys):
    sd.exec_job(chatty, elem_args={"first": 1}, console_output=True, compute_context=ctx)
    assert "[first] hello from 1" in capsys.readouterr().out


def test_large_shared_argument_and_large_results(ctx):
    big = np.arange(6_500_000, dtype=np.float64)  # 52 MB shared by every call

    def use(i, table):
        return float(table[i]) + table.size

    assert sd.exec_job(use, big, elem_args=[0, 5, 9], compute_context=ctx) == [6_500_000.0, 6_500_005.0, 6_500_009.0]
    got = sd.exec_job(lambda: np.ones(3_000_000), times_to_run=2, compute_context=ctx)  # 24 MB each
    assert all(g.shape == (3_000_000,) and g.sum() == 3_000_000 for g in got)


def test_once_per_executor_gives_one_call_per_executor(ctx, spark_mode):
    got = sd.exec_job(lambda: 1, once_per_executor=True, compute_context=ctx)
    assert isinstance(got, dict) and set(got.values()) == {1}
    expected = 2 if spark_mode in ("cluster", "standalone", "connect-server") else 1  # executors of their own
    assert len(got) == expected, got


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"elem_args": 5}, sd.ArgumentTypeError, "elem_args must be a sequence .* got int"),
        ({"elem_args": "abc"}, sd.ArgumentTypeError, "elem_args must be a sequence .* got str"),
        ({"times_to_run": 0}, sd.InvalidArgumentError, "times_to_run must be a positive int, got 0"),
        ({"times_to_run": 2.5}, sd.InvalidArgumentError, "times_to_run must be a positive int, got 2.5"),
        (
            {"elem_args": [1, 2], "times_to_run": 3},
            sd.InvalidArgumentError,
            r"times_to_run=3 disagrees with len\(elem_args\)=2",
        ),
        ({"task_chunk_size": -1}, sd.InvalidArgumentError, "task_chunk_size must be a positive int"),
        ({"rng_seed": "42"}, sd.ArgumentTypeError, "rng_seed must be an int or None, got str"),
        ({"rng_seed": 1.5}, sd.ArgumentTypeError, "rng_seed must be an int or None, got float"),
        ({"once_per_executor": 1}, sd.ArgumentTypeError, "once_per_executor must be True or False"),
        ({"compute_context": "spark"}, sd.ArgumentTypeError, "compute_context must be a sparkdist ComputeContext"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        sd.exec_job(power, **kwargs)


def test_func_not_callable():
    with pytest.raises(sd.ArgumentTypeError, match="func must be callable, got str"):
        sd.exec_job("power", times_to_run=2)


def test_unpicklable_func_is_named(ctx):
    if isinstance(ctx, sd.LocalComputeContext):
        pytest.skip("the in-process context never pickles func")
    lock = threading.Lock()

    def locked():
        with lock:
            return 1

    with pytest.raises(sd.NotPicklableError, match=r"func '.*locked'.*captured variable 'lock'"):
        sd.exec_job(locked, times_to_run=2, compute_context=ctx)


@pytest.mark.modes("local", "cluster", "standalone")  # classic: counts jobs with the status tracker
def test_all_calls_run_as_one_spark_job_with_one_stage(spark, spark_ctx):
    sc = spark.sparkContext
    sc.setJobGroup("sparkdist-one-job", "count the jobs of one exec_job")
    try:
        assert sd.exec_job(power, elem_args=list(range(200)), compute_context=spark_ctx)[-1] == 199**2
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    tracker = sc.statusTracker()
    jobs = tracker.getJobIdsForGroup("sparkdist-one-job")
    assert len(jobs) == 1
    assert len(tracker.getJobInfo(jobs[0]).stageIds) == 1


@pytest.mark.modes("cluster", "standalone", "connect-server")  # two executors, "0" and "1"
def test_once_per_executor_keys_name_host_and_executor(spark_ctx):
    import os
    import socket

    got = sd.exec_job(os.getpid, once_per_executor=True, compute_context=spark_ctx)
    ids = [k.split("/")[1] for k in got]  # Spark's executor ids ("0", "1"; later ones after a lost executor)
    assert len(set(ids)) == 2 and all(i.isdigit() for i in ids), got
    assert all(k.startswith(socket.gethostname() + "/") for k in got)
    assert len(set(got.values())) == 2  # two different Python workers


def slow_or_failing(i, marks):
    import pathlib
    import time

    if i == 0:
        raise KeyError("first call fails")
    time.sleep(0.2)
    pathlib.Path(marks, str(i)).touch()
    return i


def test_stop_on_failure_cancels_the_other_calls(ctx, tmp_path):
    with pytest.raises(sd.JobError, match="call 0 of 'slow_or_failing' failed with KeyError"):
        sd.exec_job(
            slow_or_failing, str(tmp_path), elem_args=list(range(60)), task_chunk_size=1,
            continue_on_failure=False, compute_context=ctx,
        )  # fmt: skip
    # without cancelling, all 59 other calls would finish (about 6 s on 2 slots)
    assert len(list(tmp_path.iterdir())) < 30


def chatty_both(i):
    print(f"call {i} says hello")
    print(f"call {i} warns", file=__import__("sys").stderr)
    time.sleep(0.002)  # let the other threads run meanwhile
    return i


def test_calls_from_many_threads_leave_stdout_and_random_state_alone(capfd):
    # The in-process context runs calls in the caller's threads: output capture and seeding must not
    # race (it used to leave sys.stdout pointing at a dead buffer, and the global RNGs seeded).
    import sys

    out, err = sys.stdout, sys.stderr
    random.seed(5)
    np.random.seed(5)
    before = random.getstate(), np.random.get_state()[1].copy()
    results: dict[int, object] = {}

    def work(t):
        show = t % 2 == 0
        for _ in range(5):
            results[t] = sd.exec_job(
                chatty_both, elem_args=list(range(10)), console_output=show, rng_seed=t, wait=True,
                compute_context=sd.LocalComputeContext(),
            )  # fmt: skip

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sys.stdout is out and sys.stderr is err
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])
    assert all(r == list(range(10)) for r in results.values())
    print("still visible")
    captured = capfd.readouterr()
    assert "still visible" in captured.out
    shown = [line for line in captured.out.splitlines() if "says hello" in line]
    assert len(shown) == 4 * 5 * 10  # the four threads with console_output=True, each line once
    assert all(line.startswith("[") for line in shown)  # every shown line carries its call's prefix
