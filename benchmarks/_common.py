"""Shared by the benchmark scripts: environment for an embedded local Spark, and timing."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # measure the checkout the script is in, not an installed copy
os.environ.setdefault("SPARK_CONF_DIR", str(ROOT / "conf"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` runs of ``fn``, and the last run's result."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


# -- charts for the documentation (``--chart``) ----------------------------------------------------

TIMES = "\u00d7"  # the multiplication sign after a ratio
#: Where ``--chart`` writes: the docs site's assets (docs/performance.md shows them).
ASSETS = ROOT / "docs" / "assets"


def chart_requested(argv: list[str] | None = None) -> bool:
    """Whether the script was run with ``--chart`` (taken out of ``argv``, so that scripts whose own
    parser does not know it still parse their arguments)."""
    args = sys.argv if argv is None else argv
    if "--chart" in args:
        args.remove("--chart")
        return True
    return False


def paired_ratio(ours: Callable[[], Any], theirs: Callable[[], Any], pairs: int = 5) -> dict[str, float]:
    """Time ``ours`` and ``theirs`` alternately ``pairs`` times; the median of the per-pair ratios
    ours/theirs and their range (so that drifts of a shared machine hit both sides alike)."""
    ratios = []
    for _ in range(pairs):
        start = time.perf_counter()
        theirs()
        t_theirs = time.perf_counter() - start
        start = time.perf_counter()
        ours()
        ratios.append((time.perf_counter() - start) / t_theirs)
    return {"ratio": statistics.median(ratios), "low": min(ratios), "high": max(ratios)}


def write_chart(name: str, title: str, figures: list[dict[str, Any]], *, measured: str, command: str) -> Path:
    """Write ``docs/assets/<name>.json`` (the figures) and ``docs/assets/<name>.png`` (a bar chart of them).

    ``figures``: one dict per bar, ``{"label": ..., "ratio": ours/alternative}``, optionally with
    ``"low"``/``"high"`` (the range over the pairs) and ``"unit"`` (default "ratio": a line is drawn at
    1, where sparkdist and the alternative take the same time). ``measured`` says when, where and how;
    ``command`` how to reproduce it. Bars of other labels already in the JSON are kept.
    """
    import json

    ASSETS.mkdir(parents=True, exist_ok=True)
    path = ASSETS / f"{name}.json"
    # bars of the same label are replaced, others kept: runs in two modes fill one chart
    new = {f["label"]: {**f, "measured": measured} for f in figures}
    kept = json.loads(path.read_text())["figures"] if path.exists() else []
    merged = [new.pop(f["label"], f) for f in kept] + list(new.values())
    record = {"benchmark": name, "title": title, "figures": merged, "command": command}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    render(path)
    return path


def render(json_path: Path) -> Path:
    """The PNG beside a chart's JSON: horizontal bars, labelled with their value, ranges as whiskers."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = json.loads(Path(json_path).read_text())
    figures = record["figures"]
    unit = figures[0].get("unit", "ratio") if figures else "ratio"
    labels = [f["label"] for f in figures]
    values = [f["ratio"] for f in figures]
    lows = [f["ratio"] - f.get("low", f["ratio"]) for f in figures]
    highs = [f.get("high", f["ratio"]) - f["ratio"] for f in figures]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(figures) + 1.5), dpi=100)
    y = list(range(len(figures)))[::-1]
    colors = ["#d9541e" if unit != "ratio" or v <= 1.0 else "#8c8c8c" for v in values]
    ranged = any(lows) or any(highs)
    ax.barh(y, values, color=colors, xerr=[lows, highs] if ranged else None, capsize=3, height=0.6)
    ax.set_yticks(y, labels, fontsize=9)
    for yi, v, h in zip(y, values, highs, strict=True):
        shown = f"{v:.2g}" if v < 0.1 else (f"{v:.2f}" if unit == "ratio" else f"{v:,.0f}")
        ax.text(v + h, yi, f"  {shown}{TIMES if unit == 'ratio' else ''}", va="center", fontsize=9)
    if unit == "ratio":
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xlabel("time of sparkdist ÷ time of the alternative (< 1: sparkdist is faster)", fontsize=9)
    else:
        ax.set_xlabel(unit, fontsize=9)
    ax.set_xlim(0, max([v + h for v, h in zip(values, highs, strict=True)] + [0.95 if unit == "ratio" else 0]) * 1.25)
    fig.suptitle(record["title"], fontsize=10, x=0.01, ha="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    png = Path(json_path).with_suffix(".png")
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)
    return png


if __name__ == "__main__":  # python benchmarks/_common.py docs/assets/x.json ...: draw the PNGs again
    for arg in sys.argv[1:]:
        print(render(Path(arg)))
