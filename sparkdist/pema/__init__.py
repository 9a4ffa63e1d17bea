"""External-memory algorithms (RevoPemaR): PemaAlgorithm, pema_compute, and built-in analytics.

>>> import pandas as pd
>>> from sparkdist.pema import Summary, pema_compute
>>> pema_compute(Summary(["x"]), pd.DataFrame({"x": [1.0, 3.0]}))["mean"].tolist()
[2.0]
"""

from __future__ import annotations

from sparkdist.pema.base import DataInfo, PemaAlgorithm, pema_compute
from sparkdist.pema.crosstab import Crosstab
from sparkdist.pema.kmeans import KMeans, KMeansResult
from sparkdist.pema.linreg import LinearRegression, LinearRegressionResult
from sparkdist.pema.logit import LogisticRegression, LogisticRegressionResult, SeparationWarning
from sparkdist.pema.mean import Mean
from sparkdist.pema.summary import Summary

__all__ = [
    "Crosstab",
    "DataInfo",
    "KMeans",
    "KMeansResult",
    "LinearRegression",
    "LinearRegressionResult",
    "LogisticRegression",
    "LogisticRegressionResult",
    "Mean",
    "PemaAlgorithm",
    "SeparationWarning",
    "Summary",
    "pema_compute",
]
