"""Delta tables for tests and benchmarks, with what ``deltalake`` does not write: deletion vectors
(committed as the Delta protocol describes them: a 64-bit Roaring bitmap behind the magic number, in
a deletion vector file with its size and CRC-32, or Z85 text inline in the log), and hand-made
protocol changes. The bitmaps are serialized with pyroaring (CRoaring's portable format), an
implementation independent of sparkdist's decoder."""

from __future__ import annotations

import json
import os
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sparkdist.sources.roaring import DELTA_DV_MAGIC, z85_encode


def log_state(table: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]], int]:
    """Replay the JSON commits of ``table``: its protocol, metadata, active adds by path, and version."""
    log = Path(table) / "_delta_log"
    protocol: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    adds: dict[str, dict[str, Any]] = {}
    version = start = -1
    checkpoints = sorted(log.glob("*.checkpoint.*.json"))  # v2 JSON checkpoints (tests write them)
    files = [c for c in log.glob("*.json") if len(c.stem) == 20 and c.stem.isdigit()]
    if checkpoints:
        start = int(checkpoints[-1].name[:20])
        files = [checkpoints[-1], *(c for c in files if int(c.stem) > start)]
    for commit in sorted(files, key=lambda c: int(c.name[:20])):
        version = max(version, int(commit.name[:20]))
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "protocol" in action:
                protocol = action["protocol"]
            elif "metaData" in action:
                metadata = action["metaData"]
            elif "add" in action:
                adds[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                adds.pop(action["remove"]["path"], None)
            elif "sidecar" in action:
                import pyarrow.parquet as pq

                for row in pq.read_table(log / "_sidecars" / action["sidecar"]["path"]).column("add").to_pylist():
                    row["partitionValues"] = dict(row.get("partitionValues") or [])
                    adds[row["path"]] = {k: v for k, v in row.items() if v is not None}
    return protocol, metadata, adds, version


def commit(table: str | Path, actions: list[dict[str, Any]], operation: str = "DELETE") -> int:
    """Write ``actions`` as the table's next commit (never over an existing one); its version."""
    *_, version = log_state(table)
    info = {"commitInfo": {"timestamp": int(time.time() * 1000), "operation": operation, "engineInfo": "tests"}}
    path = Path(table) / "_delta_log" / f"{version + 1:020d}.json"
    with open(path, "x") as f:
        f.write("\n".join(json.dumps(a) for a in [info, *actions]) + "\n")
    return version + 1


def with_reader_features(protocol: dict[str, Any], *features: str) -> dict[str, Any]:
    """``protocol`` upgraded to reader 3 / writer 7 with ``features`` added (the ones implied by its
    old versions kept, as the protocol requires)."""
    readers = set(protocol.get("readerFeatures") or [])
    writers = set(protocol.get("writerFeatures") or [])
    if protocol.get("minReaderVersion", 1) == 2:
        readers.add("columnMapping")
    if protocol.get("minWriterVersion", 2) >= 5 and "readerFeatures" not in protocol:
        writers |= {"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns"}
        writers |= {"columnMapping"} if protocol.get("minReaderVersion", 1) == 2 else set()
    elif "writerFeatures" not in protocol:
        writers |= {"appendOnly", "invariants"}
    readers |= set(features)
    writers |= set(features) | readers
    return {
        "protocol": {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": sorted(readers),
            "writerFeatures": sorted(writers),
        }
    }


def serialized_dv(positions: Iterable[int]) -> bytes:
    """A Delta deletion vector: the magic number, then the positions as a portable 64-bit Roaring
    bitmap (pyroaring's serialization, run containers where they are smaller)."""
    from pyroaring import BitMap64

    bitmap = BitMap64(sorted(int(p) for p in positions))
    bitmap.run_optimize()
    return struct.pack("<I", DELTA_DV_MAGIC) + bitmap.serialize()


def delete_rows(
    table: str | Path,
    choose: Callable[[dict[str, Any]], bool] | str,
    positions: Iterable[int],
    *,
    inline: bool = False,
    prefix: str = "",
    absolute: bool = False,
) -> int:
    """Delete rows ``positions`` of the file(s) ``choose`` picks (an add's path, or a predicate on
    the add action) with a deletion vector, merged with the file's current one; commits and returns
    the version. ``inline`` puts it in the log as Z85, else in a DV file (under ``prefix``, or at an
    absolute path)."""
    protocol, _, adds, _ = log_state(table)
    picked = [a for p, a in adds.items() if (p == choose if isinstance(choose, str) else choose(a))]
    assert picked, f"no file matches {choose!r}"
    actions: list[dict[str, Any]] = []
    if "deletionVectors" not in (protocol.get("readerFeatures") or []):
        actions.append(with_reader_features(protocol, "deletionVectors"))
    wanted = {int(p) for p in positions}
    for add in picked:
        rows = wanted | set(_current_deletes(table, add))
        actions.append({"remove": _remove(add)})
        new = dict(add, deletionVector=write_dv(table, rows, inline=inline, prefix=prefix, absolute=absolute))
        new["dataChange"] = True
        stats = json.loads(add["stats"]) if add.get("stats") else {}
        if stats:
            stats["tightBounds"] = False
            new["stats"] = json.dumps(stats)
        actions.append({"add": new})
    return commit(table, actions)


def write_dv(
    table: str | Path, rows: Iterable[int], *, inline: bool = False, prefix: str = "", absolute: bool = False
) -> dict[str, Any]:
    """A deletion vector of ``rows``, stored inline or in a new DV file; its descriptor."""
    data = serialized_dv(rows)
    cardinality = len(set(rows))
    if inline:
        return {"storageType": "i", "pathOrInlineDv": z85_encode(data), "sizeInBytes": len(data),
                "cardinality": cardinality}  # fmt: skip
    ident = uuid.uuid4()
    folder = Path(table) / prefix if prefix else Path(table)
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"deletion_vector_{ident}.bin"
    body = b"\x01" + struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data))
    file.write_bytes(body)
    if absolute:
        return {"storageType": "p", "pathOrInlineDv": file.resolve().as_uri(), "offset": 1,
                "sizeInBytes": len(data), "cardinality": cardinality}  # fmt: skip
    return {"storageType": "u", "pathOrInlineDv": prefix + z85_encode(ident.bytes), "offset": 1,
            "sizeInBytes": len(data), "cardinality": cardinality}  # fmt: skip


def _current_deletes(table: str | Path, add: dict[str, Any]) -> list[int]:
    from sparkdist.sources.delta_files import DeletionVector

    dv = add.get("deletionVector")
    if not dv:
        return []
    return DeletionVector.from_descriptor(dv, str(Path(table).resolve())).rows(None).tolist()


def _remove(add: dict[str, Any]) -> dict[str, Any]:
    keep = ("path", "partitionValues", "size", "deletionVector", "baseRowId", "defaultRowCommitVersion")
    out = {k: add[k] for k in keep if add.get(k) is not None}
    out.update(deletionTimestamp=int(time.time() * 1000), dataChange=True, extendedFileMetadata=True)
    return out


def data_file(table: str | Path, add: dict[str, Any]) -> str:
    """The local path of an add's data file (its path is a URI-encoded relative path)."""
    return os.path.join(str(table), unquote(add["path"]))
