"""The guard on what comes back to the driver: ``max_result_size`` and Spark's own limit."""

from __future__ import annotations

import pytest

import sparkdist as sd

KB = 1024


def concat(a, b):
    return a + b


@pytest.fixture
def limited(ctx):
    """The context with a 1 MiB limit for the test, restored afterwards."""
    before = ctx.max_result_size
    ctx.max_result_size = "1m"
    yield ctx
    ctx.max_result_size = before


def transfers(ctx) -> bool:
    """Results travel to the driver (worker processes or executors), so the limit applies."""
    return not isinstance(ctx, sd.LocalComputeContext)


def test_default_is_one_gib_like_spark_and_settable():
    assert sd.LocalComputeContext().max_result_size == 1 << 30
    assert sd.LocalComputeContext(max_result_size=None).max_result_size is None
    assert sd.LocalComputeContext(max_result_size="64 MiB").max_result_size == 64 << 20
    assert sd.LocalComputeContext(max_result_size=5000).max_result_size == 5000
    with pytest.raises(sd.ArgumentTypeError, match=r"max_result_size must be .*got \[1\]"):
        sd.LocalComputeContext(max_result_size=[1])
    with pytest.raises(sd.InvalidArgumentError, match=r"max_result_size must be .*got -3"):
        sd.SparkComputeContext(master="local[2]", max_result_size=-3)


def test_results_adding_up_past_the_limit_stop_the_job(limited, numbers, no_spark_job_running):
    # each split's result is under the limit; together they are over it
    def part(split):
        return bytes(600 * KB)

    if not transfers(limited):
        assert len(sd.distribute_job(part, numbers, compute_context=limited)) >= 1
        return
    with pytest.raises(sd.ResultTooLargeError, match=r"max_result_size=1\.0 MiB") as info:
        sd.distribute_job(part, numbers, compute_context=limited)
    err = info.value
    assert isinstance(err, MemoryError)
    assert err.limit == 1 << 20 and err.size > 1 << 20 and err.setting == "max_result_size"
    assert "reduce=" in str(err)  # says what to do about it
    no_spark_job_running(limited)
    # the same context runs a correct job afterwards
    assert sum(sd.distribute_job(len, numbers, compute_context=limited)) == len(numbers)


def test_one_result_over_the_limit_is_not_sent(limited, numbers):
    def huge(split):
        return bytes(2048 * KB)

    if not transfers(limited):
        pytest.skip("the in-process context moves no results, so max_result_size does not apply")
    with pytest.raises(sd.ResultTooLargeError, match=r"the result of split \d+ is 2\.0 MiB") as info:
        sd.distribute_job(huge, numbers, compute_context=limited)
    assert info.value.size >= 2048 * KB
    assert "not sent" in str(info.value)


def test_a_reduced_result_over_the_limit_is_refused(limited, numbers):
    # each split returns 700 KiB; folded on the workers (or summed on arrival) they pass 1 MiB
    if not transfers(limited):
        pytest.skip("the in-process context moves no results, so max_result_size does not apply")
    with pytest.raises(sd.ResultTooLargeError, match="max_result_size"):
        sd.distribute_job(lambda s: bytes(700 * KB), numbers, reduce=concat, compute_context=limited)
    assert sd.distribute_job(len, numbers, reduce=concat, compute_context=limited) == len(numbers)


def test_exec_job_results_past_the_limit(limited, no_spark_job_running):
    if not transfers(limited):
        assert len(sd.exec_job(bytes, elem_args=[400 * KB] * 4, compute_context=limited)) == 4
        return
    for keep_going in (False, True):  # not a call failure: continue_on_failure does not swallow it
        with pytest.raises(sd.ResultTooLargeError, match=r"by call \d+") as info:
            sd.exec_job(bytes, elem_args=[400 * KB] * 4, continue_on_failure=keep_going, compute_context=limited)
        assert info.value.limit == 1 << 20
    with pytest.raises(sd.ResultTooLargeError, match=r"the result of call 1 is 2\.0 MiB"):
        sd.exec_job(bytes, elem_args=[10, 2048 * KB], compute_context=limited)
    no_spark_job_running(limited)
    assert sd.exec_job(len, elem_args=["ab", "cde"], compute_context=limited) == [2, 3]


def test_no_limit_lets_everything_through(ctx):
    before = ctx.max_result_size
    ctx.max_result_size = None
    try:
        got = sd.exec_job(bytes, elem_args=[600 * KB] * 3, compute_context=ctx)
    finally:
        ctx.max_result_size = before
    assert [len(b) for b in got] == [600 * KB] * 3


@pytest.mark.modes("cluster", "standalone", "connect-server")
def test_sparks_own_max_result_size_is_translated(spark):
    # these modes' drivers run with spark.driver.maxResultSize=100m (tests/conftest.py)
    ctx = sd.SparkComputeContext(spark, max_result_size=None)
    with pytest.raises(sd.ResultTooLargeError, match=r"spark\.driver\.maxResultSize") as info:
        sd.exec_job(bytes, elem_args=[40 << 20] * 3, task_chunk_size=1, compute_context=ctx)
    assert info.value.setting == "spark.driver.maxResultSize"
    assert "Py4J" not in str(info.value) and "at org.apache" not in str(info.value)
    assert sd.exec_job(len, elem_args=["ab"], compute_context=ctx) == [2]
