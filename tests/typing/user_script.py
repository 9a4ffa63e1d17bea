"""A user's script, as mypy sees it: what sparkdist's calls return, and misuses mypy must catch.

Checked by tests/test_typing.py: every ``reveal_type(...)`` line must reveal the type in its trailing
comment (module paths dropped), and every ``# type: ignore[...]`` must be needed (mypy runs with
--warn-unused-ignores), so a misuse that mypy lets through fails the test. It is never run (pytest does
not collect it: tests/typing/conftest.py).
"""

from __future__ import annotations

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


def total(split: pd.DataFrame) -> float:
    return float(split["x"].sum())


def add(a: float, b: float) -> float:
    return a + b


def square(n: int) -> int:
    return n * n


def per_store(keys: dict[str, object], group: pd.DataFrame) -> float:
    return float(group["x"].mean())


# distribute_job: a list of func's results; one value with a reduce; a Job of either with wait=False
reveal_type(sd.distribute_job(total, frame))  # list[float]
reveal_type(sd.distribute_job(total, frame, reduce=add))  # float
reveal_type(sd.distribute_job(total, frame, wait=False))  # Job[list[float]]
reveal_type(sd.distribute_job(total, frame, reduce=add, wait=False))  # Job[float]
reveal_type(sd.distribute_job(total, frame, wait=False).result())  # list[float]

# exec_job: each slot a result or the TaskError of a failed call; named calls give a dict
reveal_type(sd.exec_job(square, elem_args=[1, 2, 3]))  # list[int | TaskError]
reveal_type(sd.exec_job(square, elem_args={"a": 1, "b": 2}))  # dict[str, int | TaskError]
reveal_type(sd.exec_job(square, elem_args=[1, 2], wait=False))  # Job[list[int | TaskError]]

# exec_by: GroupResults of the function's result type
groups = sd.exec_by(per_store, frame, ["store"])
reveal_type(groups)  # GroupResults[float]
reveal_type(groups[0].result)  # float | TaskError
reveal_type(groups.to_dict())  # dict[tuple[Any, ...], float | TaskError]

# pema_compute: what the algorithm's process_results returns
reveal_type(pema_compute(LinearRegression("x", ["store"]), frame))  # LinearRegressionResult
reveal_type(pema_compute(LogisticRegression("x", ["store"]), frame))  # LogisticRegressionResult
reveal_type(pema_compute(KMeans(["x"], k=2), frame))  # KMeansResult
reveal_type(pema_compute(Summary(), frame))  # DataFrame
reveal_type(pema_compute(Crosstab("store", "x"), frame))  # DataFrame
reveal_type(pema_compute(Mean("x"), frame))  # float


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

# misuses: each needs its ignore
sd.distribute_job(total, frame, reduce=lambda a, b: str(a) + str(b))  # type: ignore[arg-type]
sd.distribute_job(total, frame, chunked="yes")  # type: ignore[call-overload]
sd.exec_job(square, elem_args=[1], rng_seed="42")  # type: ignore[call-overload]
width: str = sd.distribute_job(total, frame, reduce=add)  # type: ignore[assignment]
