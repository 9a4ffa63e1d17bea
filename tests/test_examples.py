"""End to end: the README demo and a spark-submit job, each in its own processes (no-JVM run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **os.environ,
    "SPARK_CONF_DIR": str(ROOT / "conf"),
    "PYSPARK_PYTHON": sys.executable,
    "SPARK_LOCAL_IP": "127.0.0.1",
}

pytestmark = pytest.mark.slow


def test_readme_demo_runs_and_both_answers_agree():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")], env=ENV, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if "mean(x)=" in line]
    assert len(lines) == 2
    assert lines[0].split(":", 1)[1].split("(")[0] == lines[1].split(":", 1)[1].split("(")[0]
    assert "The two answers agree." in out.stdout


def test_spark_submit_on_local_cluster(tmp_path):
    rng = np.random.default_rng(3)
    frames = [pd.DataFrame({"x": rng.normal(size=1000)}) for _ in range(3)]
    for i, f in enumerate(frames):
        f.to_parquet(tmp_path / f"p{i}.parquet", row_group_size=250)
    spark_submit = Path(sys.executable).parent / "spark-submit"
    cmd = [
        str(spark_submit),
        "--master", "local-cluster[2,1,1024]",
        "--conf", "spark.executor.memory=768m",
        "--properties-file", str(ROOT / "conf" / "spark-defaults.conf"),
        str(ROOT / "examples" / "spark_submit_job.py"),
        str(tmp_path),
    ]  # fmt: skip
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    m = re.search(r"RESULT rows=(\d+) sum=(\S+) distributed=True", out.stdout)
    assert m, out.stdout + out.stderr[-3000:]
    assert int(m.group(1)) == 3000
    assert float(m.group(2)) == pytest.approx(float(sum(f["x"].sum() for f in frames)), rel=1e-9)
