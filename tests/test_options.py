"""Process-wide switches (sparkdist.options, SPARKDIST_PROGRESS) and the plan told by the logger."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import sparkdist as sd
from sparkdist import _console


@pytest.fixture(autouse=True)
def _options_as_found(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SPARKDIST_PROGRESS", raising=False)
    yield
    sd.options.progress = None


def test_progress_setting_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call's progress= wins; then sparkdist.options.progress; then SPARKDIST_PROGRESS; then
    interactive output (a test's output is not)."""
    assert _console.check_progress(None) is False
    monkeypatch.setenv("SPARKDIST_PROGRESS", "1")
    assert _console.check_progress(None) is True
    assert _console.check_progress(False) is False
    sd.options.progress = False
    assert sd.options.progress is False and _console.check_progress(None) is False
    assert _console.check_progress(True) is True
    sd.options.progress = None
    for word, expected in (("0", False), ("off", False), ("No", False), ("true", True), (" on ", True)):
        monkeypatch.setenv("SPARKDIST_PROGRESS", word)
        assert _console.check_progress(None) is expected, word
    monkeypatch.setenv("SPARKDIST_PROGRESS", "auto")
    assert sd.options.progress is None and _console.check_progress(None) is False
    assert repr(sd.options) == "sparkdist.options(progress=None)"


def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKDIST_PROGRESS", "sometimes")
    with pytest.raises(sd.InvalidArgumentError, match=r"SPARKDIST_PROGRESS must be one of .* got 'sometimes'"):
        sd.exec_job(pow, 2, elem_args=[1])
    monkeypatch.delenv("SPARKDIST_PROGRESS")
    sd.options.progress = False
    with pytest.raises(sd.ArgumentTypeError, match=r"options.progress must be True, False or None, got 'no'"):
        sd.options.progress = "no"  # type: ignore[assignment]
    assert sd.options.progress is False  # unchanged by the refused value


def _nap(i: int) -> int:
    time.sleep(0.15)
    return i


def test_progress_bars_follow_the_switches(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """A real bar on stderr while a call waits, or none, as the settings say."""
    ctx = sd.LocalComputeContext()

    def bar_drawn(**kwargs: object) -> bool:
        assert sd.exec_job(_nap, elem_args=range(6), compute_context=ctx, **kwargs) == list(range(6))
        return "exec_job(_nap)" in capfd.readouterr().err

    assert not bar_drawn()  # not interactive
    sd.options.progress = True
    assert bar_drawn()
    assert not bar_drawn(progress=False)
    sd.options.progress = None
    monkeypatch.setenv("SPARKDIST_PROGRESS", "1")
    assert bar_drawn()
    monkeypatch.setenv("SPARKDIST_PROGRESS", "0")
    assert not bar_drawn()
    assert bar_drawn(progress=True)


def _plan(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sparkdist" and r.getMessage().startswith("plan: ")]


def test_debug_log_tells_what_a_job_planned(ctx: object, parquet_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG: the data's splits, rows and bytes, the reader and why, the context and its task slots,
    the reduce's place, exec_job's batches and exec_by's groups. Above DEBUG: not a word (nor the work)."""
    caplog.set_level(logging.INFO, logger="sparkdist")
    assert sd.distribute_job(len, parquet_dir, reduce=lambda a, b: a + b, compute_context=ctx) == 20_000
    assert _plan(caplog) == []

    caplog.set_level(logging.DEBUG, logger="sparkdist")
    assert sd.distribute_job(len, parquet_dir, reduce=lambda a, b: a + b, compute_context=ctx) == 20_000
    lines = _plan(caplog)
    first = lines[0]
    assert first.startswith("plan: distribute_job(len): Parquet "), first
    assert "20,000 rows" in first and re.search(r"; \d+ splits?, ", first) and "task slot" in first, first
    assert "read with pyarrow" in first or "read with Spark's reader" in first, first
    assert repr(ctx) in first and "reduce '<lambda>'" in first, first
    if ctx.is_distributed:  # type: ignore[attr-defined]
        assert any(line.startswith("plan: reduce on the ") or "each task folds" in line for line in lines), lines
        assert "engine='auto'" in first, first
    else:
        assert "folded in this process" in first, first

    caplog.clear()
    sd.exec_job(pow, 2, elem_args=range(10), task_chunk_size=3, compute_context=ctx)
    assert any(line.startswith("plan: exec_job(pow): 10 calls, 3 per task") for line in _plan(caplog)), _plan(caplog)

    caplog.clear()
    frame = pd.DataFrame({"k": [1, 1, 2], "v": [1.0, 2.0, 3.0]})
    sd.exec_by(lambda keys, group: len(group), frame, ["k"], compute_context=ctx)
    assert any(line.startswith("plan: exec_by ") for line in _plan(caplog)), _plan(caplog)
