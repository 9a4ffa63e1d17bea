"""exec_job against the alternatives, on the same calls, in the same session.

1. 200 calls of a trivial function on local[2]: the hand-written floor on classic Spark
   (sc.parallelize(range(200), 2).map(f).collect()) and joblibspark's Parallel(backend="spark").
2. 40 calls that each sleep 50 ms on 2 task slots: against the ideal 1.0 s.
3. With --connect: the same 200 calls under Spark Connect against a hand-written
   spark.range(200, numPartitions=2).mapInArrow(...) (there is no RDD there).

    python benchmarks/bench_exec.py [--repeat 5] [--connect]
"""

from __future__ import annotations

import argparse
import pickle
import time

from _common import chart_requested, median_time, write_chart

import sparkdist as sd


def trivial(i: int) -> int:
    return i * i


def nap(i: int) -> int:
    time.sleep(0.05)
    return i


def row(name: str, seconds: float, base: float) -> None:
    print(f"{name:<58}{seconds:>9.3f}{seconds / base:>9.2f}")


def classic(repeat: int) -> None:
    ctx = sd.SparkComputeContext(master="local[2]")
    sc = ctx.session.sparkContext
    calls = list(range(200))
    expected = [trivial(i) for i in calls]

    def floor():
        return sc.parallelize(calls, 2).map(trivial).collect()

    def ours():
        return sd.exec_job(trivial, elem_args=calls, compute_context=ctx)

    def joblib_spark():
        from joblib import Parallel, delayed, parallel_backend
        from joblibspark import register_spark

        register_spark()
        with parallel_backend("spark", n_jobs=2):
            return Parallel()(delayed(trivial)(i) for i in calls)

    floor(), ours()  # warm up the Python workers
    t_floor, a = median_time(floor, repeat)
    t_ours, b = median_time(ours, repeat)
    try:
        joblib_spark()
        t_jl, c = median_time(joblib_spark, max(1, repeat // 2))
    except ImportError:
        t_jl, c = float("nan"), expected
    assert a == b == c == expected
    print(f"\n200 trivial calls, Spark {ctx.session.version} local[2], median of {repeat}")
    print(f"{'variant':<58}{'seconds':>9}{'ratio':>9}")
    row("sc.parallelize(range(200), 2).map(f).collect()  (floor)", t_floor, t_floor)
    row("sd.exec_job(f, elem_args=range(200))", t_ours, t_floor)
    row("joblibspark Parallel(backend='spark', n_jobs=2)", t_jl, t_floor)
    print(f"joblibspark / exec_job: {t_jl / t_ours:.1f}x slower")

    t_nap, got = median_time(lambda: sd.exec_job(nap, elem_args=list(range(40)), compute_context=ctx), repeat)
    assert got == list(range(40))
    print("\n40 calls sleeping 50 ms on 2 task slots (ideal 1.0 s)")
    row("sd.exec_job(nap, elem_args=range(40))", t_nap, 1.0)
    if CHART:
        write_chart(
            "bench_exec",
            TITLE,
            [
                {"label": "200 trivial calls vs sc.parallelize().map().collect()", "ratio": round(t_ours / t_floor, 3)},
                *(
                    [{"label": "200 trivial calls vs joblibspark", "ratio": round(t_ours / t_jl, 4)}]
                    if t_jl == t_jl
                    else []
                ),
                {"label": "40 calls of 50 ms vs the ideal 1.0 s", "ratio": round(t_nap, 3)},
            ],
            measured=f"local[2], Spark {ctx.session.version}, median of {repeat}",
            command="python benchmarks/bench_exec.py --chart  (and --connect)",
        )
    ctx.stop()


def connect(repeat: int) -> None:
    import pyarrow as pa

    ctx = sd.SparkComputeContext(remote="local[2]")
    spark = ctx.session
    calls = list(range(200))

    def hand(batches):
        for batch in batches:
            ids = batch.column(0).to_pylist()
            yield pa.RecordBatch.from_pydict({"r": [pickle.dumps(trivial(i)) for i in ids]})

    def floor():
        return [
            pickle.loads(r.r) for r in spark.range(0, 200, 1, numPartitions=2).mapInArrow(hand, "r binary").collect()
        ]

    def ours():
        return sd.exec_job(trivial, elem_args=calls, compute_context=ctx)

    floor(), ours()
    t_floor, a = median_time(floor, repeat)
    t_ours, b = median_time(ours, repeat)
    assert a == b
    print(f"\n200 trivial calls, Spark Connect {spark.version} remote('local[2]'), median of {repeat}")
    print(f"{'variant':<58}{'seconds':>9}{'ratio':>9}")
    row("spark.range(200, numPartitions=2).mapInArrow(...)  (floor)", t_floor, t_floor)
    row("sd.exec_job(f, elem_args=range(200))", t_ours, t_floor)
    if CHART:
        write_chart(
            "bench_exec",
            TITLE,
            [{"label": "Spark Connect: 200 calls vs hand-written mapInArrow", "ratio": round(t_ours / t_floor, 3)}],
            measured=f"remote('local[2]'), Spark {spark.version}, median of {repeat}",
            command="python benchmarks/bench_exec.py --chart  (and --connect)",
        )
    ctx.stop()


TITLE = "exec_job: many small calls as one Spark job, local[2]"
CHART = chart_requested()  # --chart: also write docs/assets/bench_exec.{json,png} (docs/performance.md)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--connect", action="store_true")
    args = ap.parse_args()
    connect(args.repeat) if args.connect else classic(args.repeat)
