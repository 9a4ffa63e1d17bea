"""A user's script, as mypy sees it: what sparkdist's calls return, and misuses mypy must catch.

Checked by tests/test_typing.py: every ``reveal_type(...)`` line must reveal the type in its trailing
comment (module paths dropped), and every ``# type: ignore[...]`` must be needed (mypy runs with
--warn-unused-ignores), so a misuse that mypy lets through fails the test. It is never run (pytest does
not collect it: tests/typing/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from typing_extensions import reveal_type

import sparkdist as sd
from sparkdist.pema import (
    Crosstab,
    KMeans,
    LinearRegression,
    LogisticRegression,
    Mean,
    PemaAlgorithm,
    Summary,
    pema_compute,
)

frame = pd.DataFrame({"store": [1, 1, 2], "x": [1.0, 2.0, 3.0]})
flag = bool(len(frame))  # a wait= known only at run time


def total(split: pd.DataFrame) -> float:
    return float(split["x"].sum())


def add(a: float, b: float) -> float:
    return a + b


def shout(a: str, b: str) -> str:
    return a + b


def square(n: int) -> int:
    return n * n


def per_store(keys: dict[str, object], group: pd.DataFrame) -> float:
    return float(group["x"].mean())


# distribute_job: a list of func's results; one value with a reduce; a Job of either with wait=False
reveal_type(sd.distribute_job(total, frame))  # list[float]
reveal_type(sd.distribute_job(total, frame, reduce=add))  # float
reveal_type(sd.distribute_job(total, frame, wait=True))  # list[float]
reveal_type(sd.distribute_job(total, frame, wait=False))  # Job[list[float]]
reveal_type(sd.distribute_job(total, frame, reduce=add, wait=False))  # Job[float]
reveal_type(sd.distribute_job(total, frame, output="out"))  # DataSource
reveal_type(sd.distribute_job(total, frame, output=sd.DeltaData("t"), mode="append", wait=False))  # Job[DataSource]
reveal_type(sd.distribute_job(total, frame, wait=False).result())  # list[float]
reveal_type(sd.distribute_job(total, frame, reduce=add, wait=False).result(timeout=5))  # float
reveal_type(sd.distribute_job(total, frame, wait=flag))  # list[float] | Job[list[float]]
reveal_type(sd.distribute_job(total, frame, reduce=add, wait=flag))  # float | Job[float]
reveal_type(sd.distribute_job(lambda s: len(s), frame))  # list[int]
reveal_type(sd.distribute_job(lambda s: float(s["x"].sum()), frame, reduce=add))  # float

# exec_job: each slot a result or the TaskError of a failed call; named calls (and once_per_executor) a dict
reveal_type(sd.exec_job(square, elem_args=[1, 2, 3]))  # list[int | TaskError]
reveal_type(sd.exec_job(square, elem_args=np.arange(3)))  # list[int | TaskError]
reveal_type(sd.exec_job(square, elem_args=pd.Series([1, 2])))  # list[int | TaskError]
reveal_type(sd.exec_job(square, 2, times_to_run=3))  # list[int | TaskError]
reveal_type(sd.exec_job(square, elem_args={"a": 1, "b": 2}))  # dict[str, int | TaskError]
reveal_type(sd.exec_job(square, elem_args={10: 1, 20: 2}))  # dict[int, int | TaskError]
reveal_type(sd.exec_job(square, 3, once_per_executor=True))  # dict[str, int | TaskError]
reveal_type(sd.exec_job(square, elem_args=[1, 2], wait=False))  # Job[list[int | TaskError]]
reveal_type(sd.exec_job(square, elem_args={"a": 1}, wait=False))  # Job[dict[str, int | TaskError]]
reveal_type(sd.exec_job(square, 3, once_per_executor=True, wait=False))  # Job[dict[str, int | TaskError]]
reveal_type(sd.exec_job(square, elem_args=[1, 2], wait=flag))  # list[int | TaskError] | Job[list[int | TaskError]]
reveal_type(sd.exec_job(square, elem_args=[1], wait=False).result())  # list[int | TaskError]

# exec_by: GroupResults of the function's result type
groups = sd.exec_by(per_store, frame, ["store"])
reveal_type(groups)  # GroupResults[float]
reveal_type(groups[0])  # GroupResult[float]
reveal_type(groups[0].result)  # float | TaskError
reveal_type(groups.to_dict())  # dict[tuple[Any, ...], float | TaskError]
reveal_type([g.result for g in groups if not isinstance(g.result, sd.TaskError)])  # list[float]
reveal_type(sd.exec_by(per_store, frame, "store", wait=False))  # Job[GroupResults[float]]
reveal_type(sd.exec_by(per_store, frame, "store", wait=flag))  # GroupResults[float] | Job[GroupResults[float]]

# pema_compute: what the algorithm's process_results returns
reveal_type(pema_compute(LinearRegression("x", ["store"]), frame))  # LinearRegressionResult
reveal_type(pema_compute(LogisticRegression("x", ["store"]), frame))  # LogisticRegressionResult
reveal_type(pema_compute(KMeans(["x"], k=2), frame))  # KMeansResult
reveal_type(pema_compute(Summary(), frame))  # DataFrame
reveal_type(pema_compute(Crosstab("store", "x"), frame))  # DataFrame
reveal_type(pema_compute(Mean("x"), frame))  # float
reveal_type(pema_compute(Mean("x"), frame, wait=False))  # Job[float]
reveal_type(pema_compute(Mean("x"), frame, wait=flag))  # float | Job[float]


class Count(PemaAlgorithm[int]):
    def initialize(self) -> None:
        self.n = 0

    def process_data(self, chunk: pd.DataFrame) -> None:
        self.n += len(chunk)

    def update_results(self, other: Count) -> None:
        self.n += other.n

    def process_results(self) -> int:
        return self.n


reveal_type(pema_compute(Count(), frame))  # int
reveal_type(pema_compute(Count(), frame, wait=False))  # Job[int]
reveal_type(pema_compute(Count(), frame, wait=False).result())  # int

# jobs: as_completed keeps the result type; get_jobs lists jobs of every kind
reveal_type(sd.as_completed([sd.distribute_job(total, frame, wait=False)]))  # Iterator[Job[list[float]]]
reveal_type(sd.get_jobs())  # list[Job[Any]]

# misuses: each needs its ignore
sd.distribute_job(total, frame, reduce=shout)  # type: ignore[misc]
sd.distribute_job(total, frame, chunked="yes")  # type: ignore[call-overload]
sd.distribute_job(total, frame, wait="no")  # type: ignore[call-overload]
sd.distribute_job(total, frame, output="out", reduce=add)  # type: ignore[call-overload]
sd.distribute_job(total, frame, output="out", mode="replace")  # type: ignore[call-overload]
sd.exec_job(square, elem_args=[1], rng_seed="42")  # type: ignore[call-overload]
sd.exec_job(square, elem_args=42)  # type: ignore[call-overload]
sd.exec_by(per_store, frame, ["store"], filter="store > 1")  # type: ignore[call-overload]
pema_compute(total, frame)  # type: ignore[call-overload]
width: str = sd.distribute_job(total, frame, reduce=add)  # type: ignore[assignment]
first: int = sd.exec_job(square, elem_args=[1])[0]  # type: ignore[assignment]
later: list[float] = sd.distribute_job(total, frame, wait=False)  # type: ignore[assignment]
sd.distribute_job(total, frame).result()  # type: ignore[attr-defined]
sd.exec_by(per_store, frame, ["store"], wait=False).to_dict()  # type: ignore[attr-defined]
groups[0].result + 1.0  # type: ignore[operator]
fit: str = pema_compute(Count(), frame)  # type: ignore[assignment]
