"""Delta Lake on the Arrow fast path: X'X of 9 columns over a 4,000,000-row Delta table (10 float64
columns, 8 files of 128,000-row row groups) with 10% of each file's rows deleted by deletion vectors
(on disk, as Spark writes them), on local[2], in one session.

Pairs alternate (at least 5), and each ratio is ours / the other in the same pair:
- (a) distribute_job on DeltaData (deletion vectors applied on the executors) vs distribute_job on
  ParquetData over the same data files without deletes (target <= 1.15)
- (b) distribute_job on DeltaData vs ``DeltaTable.scan()`` + numpy in this one process, the format's
  own reader on the same 2 cores (target <= 1.0)

    python benchmarks/bench_delta.py [--rows 4000000] [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _common import ROOT

import sparkdist as sd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from _delta_tables import data_file, delete_rows, log_state
from bench_distribute import COLS, make_data, xtx_chunks


def make_table(path: Path, rows: int, deleted: float) -> Path:
    """The bench_distribute data written as a Delta table (same row groups), then ``deleted`` of each
    file's rows deleted by a deletion vector file."""
    import pyarrow.dataset as pads
    from deltalake import WriterProperties, write_deltalake

    marker = path / "_bench"
    if marker.exists() and marker.read_text() == f"{rows} {deleted}":
        return path
    source = make_data(ROOT / "benchmarks" / "data" / "xtx", rows)
    if path.exists():
        import shutil

        shutil.rmtree(path)
    for i, fragment in enumerate(sorted(pads.dataset(source).get_fragments(), key=lambda f: f.path)):
        props = WriterProperties(max_row_group_size=128_000, compression="SNAPPY")
        write_deltalake(path, fragment.to_table(), mode="append" if i else "error", writer_properties=props)
    rng = np.random.default_rng(1)
    _, _, adds, _ = log_state(path)
    for log_path, add in sorted(adds.items()):
        n = int(json.loads(add["stats"])["numRecords"])
        delete_rows(path, log_path, rng.choice(n, size=int(n * deleted), replace=False), prefix="dv")
    marker.write_text(f"{rows} {deleted}")
    return path


def scan_xtx(path: str) -> np.ndarray:
    import pyarrow as pa
    from deltalake import DeltaTable

    acc = np.zeros((9, 9))
    for batch in DeltaTable(path).scan(columns=COLS):
        batch = pa.record_batch(batch)
        x = np.column_stack([batch.column(i).to_numpy(zero_copy_only=False) for i in range(batch.num_columns)])
        acc += x.T @ x
    return acc


def decode_costs(source: sd.DeltaData, table: str) -> None:
    """Where deletion vectors are decoded: on the executors from their descriptors (what the splits
    carry), or on the driver, shipping each file's deleted row positions in its split."""
    import pickle

    import pyarrow as pa
    from deltalake import DeltaTable

    snap = source.snapshot()
    dvs = [f.deletes for f in snap.files if f.deletes is not None]
    start = time.perf_counter()
    rows = [dv.rows(snap.filesystem) for dv in dvs]
    ours = time.perf_counter() - start
    start = time.perf_counter()
    pa.table(DeltaTable(table).deletion_vectors().read_all())
    theirs = time.perf_counter() - start
    print(
        f"deletion vectors of {len(dvs)} files ({sum(len(r) for r in rows):,} rows): decoded by sparkdist's numpy "
        f"decoder in {ours:.3f} s (one process; on the executors each task decodes its own files' ones); "
        f"deltalake's deletion_vectors() on the driver {theirs:.3f} s. A split carries "
        f"{len(pickle.dumps(dvs)) / len(dvs):,.0f} bytes per descriptor, or "
        f"{len(pickle.dumps(rows)) / len(dvs):,.0f} bytes per file as decoded positions."
    )


def timed(fn) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--deleted", type=float, default=0.10)
    args = ap.parse_args()
    table = make_table(ROOT / "benchmarks" / "data" / "delta_xtx", args.rows, args.deleted)
    _, _, adds, version = log_state(table)
    files = [data_file(table, a) for a in adds.values()]

    ctx = sd.SparkComputeContext(master="local[2]")
    delta = sd.DeltaData(table, columns=COLS)
    parquet = sd.ParquetData(files, columns=COLS)
    report = delta.validate(ctx)

    def ours() -> np.ndarray:
        return sd.distribute_job(xtx_chunks, delta, chunked=True, reduce=np.add, compute_context=ctx)

    def plain() -> np.ndarray:
        return sd.distribute_job(xtx_chunks, parquet, chunked=True, reduce=np.add, compute_context=ctx)

    def theirs() -> np.ndarray:
        return scan_xtx(str(table))

    for fn in (ours, plain, theirs):
        fn()  # warm up
    ratios: dict[str, list[float]] = {"parquet": [], "scan": []}
    times: dict[str, list[float]] = {"delta": [], "parquet": [], "scan": []}
    for i in range(args.pairs):
        for other, fn in (("parquet", plain), ("scan", theirs)):
            order = [("delta", ours), (other, fn)] if i % 2 == 0 else [(other, fn), ("delta", ours)]
            got = {name: timed(f) for name, f in order}
            times["delta"].append(got["delta"][0])
            times[other].append(got[other][0])
            ratios[other].append(got["delta"][0] / got[other][0])
            if other == "scan":
                np.testing.assert_allclose(got["delta"][1], got["scan"][1], rtol=1e-9)
    print(
        f"\nX'X of 9 columns, {args.rows:,} rows ({report.n_rows:,} after deletion vectors, version {version}), "
        f"{len(files)} files, local[2], {args.pairs} alternating pairs each"
    )
    print(f"{'variant':<58}{'median s':>10}")
    for label, key in (
        ("distribute_job on DeltaData (deletion vectors applied)", "delta"),
        ("distribute_job on ParquetData, same files, no deletes", "parquet"),
        ("DeltaTable.scan() + numpy, one process", "scan"),
    ):
        print(f"{label:<58}{statistics.median(times[key]):>10.3f}")
    decode_costs(delta, str(table))
    for key, target in (("parquet", 1.15), ("scan", 1.0)):
        r = ratios[key]
        print(
            f"DeltaData / {key:<8} median {statistics.median(r):.2f}  range {min(r):.2f}-{max(r):.2f}  "
            f"(target <= {target})"
        )
    ctx.stop()


if __name__ == "__main__":
    main()
