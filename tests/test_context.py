"""Compute contexts and the current-context machinery."""

from __future__ import annotations

import asyncio
import threading

import pytest

import sparkdist as sd


def test_default_is_local_without_a_spark_session():
    assert isinstance(sd.get_compute_context(), sd.LocalComputeContext)


def test_set_returns_previous_and_get_returns_current():
    a, b = sd.LocalComputeContext(), sd.LocalParallelComputeContext(2)
    first = sd.set_compute_context(a)
    try:
        assert sd.set_compute_context(b) is a
        assert sd.get_compute_context() is b
    finally:
        sd.set_compute_context(None)
    assert sd.get_compute_context() is not b and first is not a


def test_set_returns_the_previous_process_default_so_that_it_restores_exactly():
    """Not the current context: a ``with`` block's, or the automatic default, would become the process
    default when a caller restores what set_compute_context returned."""
    assert sd.set_compute_context(None) is None  # nothing was set: None, not the automatic local context
    scoped = sd.LocalParallelComputeContext(2)
    with scoped:
        prev = sd.set_compute_context(sd.LocalComputeContext())
        assert prev is None
        sd.set_compute_context(prev)
    assert sd.set_compute_context(None) is None  # restored exactly: no default left behind


def test_set_compute_context_is_process_wide_and_with_stays_scoped():
    # RevoScaleR's rxSetComputeContext is process-wide: ETL code with thread pools must see it.
    import concurrent.futures

    pool_ctx = sd.LocalParallelComputeContext(2)
    sd.set_compute_context(pool_ctx)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            assert pool.submit(sd.get_compute_context).result() is pool_ctx
        scoped = sd.LocalComputeContext()
        with scoped:
            assert sd.get_compute_context() is scoped
            with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a new thread: not inside the block
                assert pool.submit(sd.get_compute_context).result() is pool_ctx
        assert sd.get_compute_context() is pool_ctx
    finally:
        sd.set_compute_context(None)
    assert isinstance(sd.get_compute_context(), sd.LocalComputeContext)


def test_with_block_restores_on_exception():
    outer = sd.get_compute_context()
    inner = sd.LocalParallelComputeContext(2)
    with pytest.raises(KeyError), inner:
        assert sd.get_compute_context() is inner
        raise KeyError("x")
    assert sd.get_compute_context() is outer


def test_nested_with_blocks():
    a, b = sd.LocalComputeContext(), sd.LocalComputeContext()
    with a:
        with b:
            assert sd.get_compute_context() is b
        assert sd.get_compute_context() is a


def test_context_is_per_thread():
    mine = sd.LocalParallelComputeContext(2)
    seen = {}
    with mine:
        t = threading.Thread(target=lambda: seen.setdefault("other", sd.get_compute_context()))
        t.start()
        t.join()
        assert sd.get_compute_context() is mine
    assert seen["other"] is not mine


def test_context_is_per_asyncio_task():
    async def use(ctx):
        with ctx:
            await asyncio.sleep(0.01)
            return sd.get_compute_context() is ctx

    async def main():
        return await asyncio.gather(*(use(sd.LocalComputeContext()) for _ in range(5)))

    assert asyncio.run(main()) == [True] * 5


def test_set_compute_context_rejects_other_objects():
    with pytest.raises(sd.ArgumentTypeError, match="compute_context must be a sparkdist ComputeContext.*got str"):
        sd.set_compute_context("spark")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", True])
def test_local_parallel_rejects_bad_worker_counts(bad):
    with pytest.raises(sd.InvalidArgumentError, match="n_workers must be a positive int"):
        sd.LocalParallelComputeContext(bad)


def test_local_contexts_are_not_distributed(numbers):
    for ctx in (sd.LocalComputeContext(), sd.LocalParallelComputeContext(2)):
        assert not sd.is_distributed_context(ctx)
        assert not sd.is_distributed_context(ctx, data=numbers)


def test_is_distributed_context_type_checks():
    with pytest.raises(sd.ArgumentTypeError, match="compute_context must be"):
        sd.is_distributed_context("local")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data must be"):
        sd.is_distributed_context(sd.LocalComputeContext(), data=object())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"master": "local[1]", "remote": "local[1]"}, "master .* or remote .*, not both"),
        ({"num_executors": 0}, "num_executors must be a positive int"),
        ({"executor_cores": "2"}, "executor_cores must be a positive int"),
        ({"executor_memory": 4}, "executor_memory must be a non-empty str"),
        ({"spark_config": ["a=b"]}, "spark_config must be a mapping"),
        ({"master": ""}, "master must be a non-empty str"),
        ({"ship_package": "yes"}, "ship_package must be True, False or None"),
    ],
)
def test_spark_context_argument_checks(kwargs, message):
    with pytest.raises(sd.SparkDistError, match=message):
        sd.SparkComputeContext(**kwargs)


def test_spark_context_session_must_be_a_session():
    with pytest.raises(sd.ArgumentTypeError, match="session must be a pyspark SparkSession, got str"):
        sd.SparkComputeContext("spark")  # type: ignore[arg-type]


def test_building_a_spark_context_starts_nothing():
    import sys

    ctx = sd.SparkComputeContext(master="local[2]")
    assert ctx.is_distributed and not ctx.is_connect
    assert sd.SparkComputeContext(remote="sc://127.0.0.1:1").is_connect
    assert "pyspark" not in sys.modules or ctx._session is None


def test_import_is_light_and_starts_no_jvm():
    import subprocess
    import sys

    code = (
        "import sys, sparkdist; print(sorted(m for m in ('pyspark', 'pandas', 'pyarrow', 'py4j') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_subpackages_are_attributes_loaded_on_first_use():
    import subprocess
    import sys

    script = (
        "import sys, sparkdist as sd\n"
        "assert 'sparkdist.pema' not in sys.modules\n"
        "print(sd.pema.Summary.__name__, 'pema' in dir(sd), 'pyspark' in sys.modules)\n"
        "try:\n    sd.nothing\nexcept AttributeError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["Summary True False", "module 'sparkdist' has no attribute 'nothing'"], (
        out.stderr
    )
