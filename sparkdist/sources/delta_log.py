"""A Delta table's snapshot, resolved once on the driver with ``deltalake``: its version, schema,
partition columns, column mapping, and active files with their partition values, statistics and
deletion vectors.

``deltalake`` replays the log (JSON commits, Parquet and v2 checkpoints) and gives the active files
with typed partition values and statistics, but not their deletion vectors' descriptors; those are
read here from the same log, up to the pinned version (only on tables with the ``deletionVectors``
feature), and every one must belong to an active file.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sparkdist.errors import DataNotFoundError, DataSourceError, InvalidArgumentError
from sparkdist.sources.delta_files import ColumnMapping, DeletionVector
from sparkdist.sources.paths import arrow_filesystem, one_line, scheme

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = [
    "HANDLED_READER_FEATURES",
    "DeltaFile",
    "Snapshot",
    "has_deltalake",
    "is_delta_table",
    "load_snapshot",
    "missing_deltalake",
]

#: Reader features whose tables this reader reads right (the others are refused, naming them).
HANDLED_READER_FEATURES = frozenset(
    {"columnMapping", "deletionVectors", "timestampNtz", "v2Checkpoint", "vacuumProtocolCheck",
     "typeWidening", "typeWidening-preview", "checkpointProtection"}
)  # fmt: skip


@dataclass(frozen=True)
class DeltaFile:
    """An active data file of the snapshot."""

    path: str  # on the table's file system
    log_path: str  # as the log writes it (URI-encoded, relative or absolute)
    size: int
    rows: int | None  # numRecords, deleted rows included
    partition: dict[str, Any]  # logical partition column -> typed value (None: null)
    stats: dict[str, tuple[Any, Any, int | None]]  # logical column -> (min, max, null count)
    deletes: DeletionVector | None = None


@dataclass
class Snapshot:
    """One version of a Delta table, as the driver planned it."""

    uri: str
    version: int
    filesystem: pafs.FileSystem
    root: str  # the table's folder on ``filesystem``
    schema: pa.Schema  # logical names, the table's types (no field metadata)
    partition_names: list[str]
    mapping: ColumnMapping | None
    files: list[DeltaFile]
    reader_features: list[str] = field(default_factory=list)


def missing_deltalake(uri: str) -> DataSourceError:
    return DataSourceError(
        f"'{uri}' is a Delta Lake table; reading it on the Arrow fast path needs the deltalake package on the "
        "driver (executors need only pyarrow): pip install 'sparkdist[delta]'. Or, in a Spark context whose "
        'Spark reads Delta (delta-spark, Databricks), DeltaData(path, engine="spark").'
    )


def load_snapshot(
    uri: str, version: int | None, timestamp: datetime.datetime | str | None, storage_options: dict[str, str] | None
) -> Snapshot:
    """The snapshot of ``uri`` at ``version`` / ``timestamp`` (default: the latest), with its files."""
    try:
        import deltalake
    except ImportError as err:
        raise missing_deltalake(uri) from err
    table = _open(deltalake, uri, version, timestamp, storage_options)
    pinned = table.version()
    protocol = table.protocol()
    features = list(protocol.reader_features or [])
    _check_protocol(uri, protocol.min_reader_version, features)
    import pyarrow as pa

    arrow = pa.schema(table.schema().to_arrow())
    meta = table.metadata()
    mode = meta.configuration.get("delta.columnMapping.mode", "none")
    mapping = ColumnMapping.from_schema(mode, arrow) if mode in ("name", "id") else None
    fs, root = arrow_filesystem(uri)
    root = root.rstrip("/")
    schema = pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow])
    files = _files(table, fs, root, schema, mapping)
    if "deletionVectors" in features:
        files = _with_deletes(files, fs, root, pinned, uri)
    return Snapshot(uri, pinned, fs, root, schema, list(meta.partition_columns), mapping, files, features)


def _open(deltalake: Any, uri: str, version: int | None, timestamp: Any, options: dict[str, str] | None) -> Any:
    from deltalake.exceptions import TableNotFoundError

    try:
        table = deltalake.DeltaTable(uri, version=version, storage_options=options)
    except TableNotFoundError as err:
        raise DataNotFoundError(f"no Delta table at '{uri}' ({one_line(err)})") from err
    except Exception as err:
        if version is not None:
            latest = _latest(deltalake, uri, options)
            raise DataNotFoundError(
                f"the Delta table '{uri}' has no version {version}"
                + (f" (its versions run to {latest})" if latest is not None else "")
                + f": {one_line(err)}"
            ) from err
        raise DataSourceError(f"cannot open the Delta table '{uri}': {one_line(err)}") from err
    if timestamp is not None:
        try:
            table.load_as_version(timestamp)
        except Exception as err:
            raise DataNotFoundError(
                f"the Delta table '{uri}' has no version at or before {timestamp}: {one_line(err)}"
            ) from err
        _check_not_before_first(deltalake, uri, table, timestamp, options)
    return table


def _check_not_before_first(deltalake: Any, uri: str, table: Any, timestamp: Any, options: Any) -> None:
    """DataNotFoundError when ``timestamp`` is before the commit of the version deltalake loaded for it
    (its ``load_as_version`` gives the first version for a time before the table existed; Spark's
    ``timestampAsOf`` refuses it, and so do we)."""
    import datetime

    when = datetime.datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    loaded = table.version()
    history = deltalake.DeltaTable(uri, storage_options=options).history()  # of the latest: right versions
    committed = next((h.get("timestamp") for h in history if h.get("version") == loaded), None)
    if committed is not None and when.timestamp() * 1000 < committed:
        first = datetime.datetime.fromtimestamp(committed / 1000, tz=datetime.timezone.utc)
        raise DataNotFoundError(
            f"the Delta table '{uri}' has no version at or before {timestamp}: its version {loaded}, the "
            f"earliest it keeps, was committed at {first.isoformat()}"
        )


def _latest(deltalake: Any, uri: str, options: dict[str, str] | None) -> int | None:
    try:
        return int(deltalake.DeltaTable(uri, storage_options=options).version())
    except Exception:  # noqa: BLE001 - only to say more in an error message
        return None


def _check_protocol(uri: str, min_reader: int, features: list[str]) -> None:
    unknown = sorted(set(features) - HANDLED_READER_FEATURES)
    if min_reader > 3 or unknown:
        what = f"reader feature(s) {', '.join(unknown)}" if unknown else f"reader version {min_reader}"
        raise DataSourceError(
            f"the Delta table '{uri}' needs {what}, which sparkdist's Arrow reader does not handle; read it with "
            'Spark\'s Delta reader: DeltaData(path, engine="spark") in a Spark context whose Spark reads Delta.'
        )


def _files(
    table: Any, fs: pafs.FileSystem, root: str, schema: pa.Schema, mapping: ColumnMapping | None
) -> list[DeltaFile]:
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True))
    logical = {v: k for k, v in mapping.physical_names().items()} if mapping is not None else {}
    columns = {name: actions.column(name).to_pylist() for name in actions.column_names}
    n = actions.num_rows
    parts = [c for c in columns if c.startswith("partition.")]
    stat_names = {c.split(".", 1)[1] for c in columns if c.startswith(("min.", "max.", "null_count."))}
    stat_names = {c for c in stat_names if logical.get(c, c) in schema.names}
    files = []
    for i in range(n):
        log_path = columns["path"][i]
        stats = {
            logical.get(c, c): (
                columns.get(f"min.{c}", [None] * n)[i],
                columns.get(f"max.{c}", [None] * n)[i],
                columns.get(f"null_count.{c}", [None] * n)[i],
            )
            for c in stat_names
        }
        files.append(
            DeltaFile(
                path=data_path(fs, root, log_path),
                log_path=log_path,
                size=int(columns["size_bytes"][i]),
                rows=columns["num_records"][i],
                partition={p.split(".", 1)[1]: columns[p][i] for p in parts},
                stats=stats,
            )
        )
    return files


def data_path(fs: pafs.FileSystem, root: str, log_path: str) -> str:
    """A path of the log (a URI-encoded path relative to the table, or an absolute URI) on ``fs``:
    decoded exactly once, so partition values with ``%``, spaces, ``=`` or non-ASCII letters
    name the file they name."""
    if scheme(log_path) is None:
        return f"{root}/{unquote(log_path)}"
    parts = urlsplit(log_path)
    if parts.scheme == "file":
        return unquote(parts.path)
    _, on_fs = arrow_filesystem(parts.scheme + "://" + parts.netloc + parts.path)
    return unquote(on_fs)


# -- deletion vectors from the log ------------------------------------------------------------------

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10})|\.[^.]+)?\.(parquet|json)$")


def _with_deletes(files: list[DeltaFile], fs: pafs.FileSystem, root: str, version: int, uri: str) -> list[DeltaFile]:
    """``files`` with their deletion vectors, as the log up to ``version`` gives them."""
    descriptors = _replay_deletes(fs, f"{root}/_delta_log", version)
    by_path = {f.log_path: f for f in files}
    by_decoded = {unquote(f.log_path): f for f in files}
    out = dict(by_path)
    for log_path, desc in descriptors.items():
        found = by_path.get(log_path) or by_decoded.get(unquote(log_path))
        if found is None:
            raise DataSourceError(
                f"the log of the Delta table '{uri}' (version {version}) has a deletion vector for '{log_path}', "
                "which is not one of the table's active files: the log is inconsistent; nothing was read"
            )
        dv = DeletionVector.from_descriptor(desc, root, found.path)
        out[found.log_path] = DeltaFile(**{**found.__dict__, "deletes": dv})
    return list(out.values())


def _replay_deletes(fs: pafs.FileSystem, log: str, version: int) -> dict[str, Mapping[str, Any]]:
    """The deletion vector descriptor of every active file that has one: the newest checkpoint at or
    before ``version``, then the JSON commits after it (files identified by path and DV, as the
    protocol identifies them)."""
    import pyarrow.fs as pafs

    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(log)) if i.type == pafs.FileType.File]
    commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT.match(n)))
    start, active = _from_checkpoint(fs, log, names, version)
    for v in commits:
        if start < v <= version:
            with fs.open_input_stream(f"{log}/{v:020d}.json") as f:
                _apply_lines(active, f.read().decode("utf-8").splitlines())
    found: dict[str, Mapping[str, Any]] = {}
    for (path, _), desc in active.items():
        if desc is not None:
            found[path] = desc
    return found


def _key(action: Mapping[str, Any]) -> tuple[str, str | None]:
    dv = action.get("deletionVector")
    if not dv:
        return action["path"], None
    offset = dv.get("offset")
    return action["path"], f"{dv['storageType']}{dv['pathOrInlineDv']}" + ("" if offset is None else f"@{offset}")


def _apply_lines(active: dict[tuple[str, str | None], Any], lines: list[str]) -> None:
    adds, removes = [], []
    for line in lines:
        if line.strip():
            action = json.loads(line)
            if action.get("add"):
                adds.append(action["add"])
            elif action.get("remove"):
                removes.append(action["remove"])
    for remove in removes:
        active.pop(_key(remove), None)
    for add in adds:
        active[_key(add)] = add.get("deletionVector") or None


def _from_checkpoint(
    fs: pafs.FileSystem, log: str, names: list[str], version: int
) -> tuple[int, dict[tuple[str, str | None], Any]]:
    """The adds of the newest complete checkpoint at or before ``version`` (and its version; -1 and
    nothing without one)."""
    by_version: dict[int, list[tuple[str, int | None]]] = {}
    for n in names:
        m = _CHECKPOINT.match(n)
        if m and int(m.group(1)) <= version:
            by_version.setdefault(int(m.group(1)), []).append((n, None if m.group(3) is None else int(m.group(3))))
    for v in sorted(by_version, reverse=True):
        parts = by_version[v]
        multi = [n for n, total in parts if total is not None]
        single = [n for n, total in parts if total is None]
        if single:
            chosen = [single[0]]
        elif multi and len(multi) == parts[0][1]:
            chosen = sorted(multi)
        else:
            continue
        active: dict[tuple[str, str | None], Any] = {}
        for name in chosen:
            for add in _checkpoint_adds(fs, log, name):
                active[_key(add)] = add.get("deletionVector") or None
        return v, active
    return -1, {}


def _checkpoint_adds(fs: pafs.FileSystem, log: str, name: str) -> list[Mapping[str, Any]]:
    """The add actions (path and deletion vector) of a checkpoint file, and of a v2 checkpoint's
    sidecar files."""
    if name.endswith(".json"):
        with fs.open_input_stream(f"{log}/{name}") as f:
            actions = [json.loads(line) for line in f.read().decode("utf-8").splitlines() if line.strip()]
        adds = [a["add"] for a in actions if a.get("add")]
        sidecars = [a["sidecar"]["path"] for a in actions if a.get("sidecar")]
    else:
        adds, sidecars = _parquet_actions(fs, f"{log}/{name}")
    for sidecar in sidecars:
        path = sidecar if scheme(sidecar) else f"{log}/_sidecars/{unquote(sidecar)}"
        adds += _parquet_actions(fs, path)[0]
    return adds


def _parquet_actions(fs: pafs.FileSystem, path: str) -> tuple[list[Mapping[str, Any]], list[str]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    file = pq.ParquetFile(fs.open_input_file(path))
    names = file.schema_arrow.names
    table = file.read(columns=[c for c in ("add", "sidecar") if c in names])
    adds: list[Mapping[str, Any]] = []
    if "add" in names:
        column = table.column("add")
        present = column.filter(pc.is_valid(column))
        fields = [f.name for f in present.type]
        wanted = [f for f in ("path", "deletionVector") if f in fields]
        adds = [{f: row[f] for f in wanted} for row in present.to_pylist()]
    sidecars: list[str] = []
    if "sidecar" in names:
        column = table.column("sidecar")
        sidecars = [row["path"] for row in column.filter(pc.is_valid(column)).to_pylist()]
    return adds, sidecars


def check_version_args(version: Any, timestamp: Any) -> None:
    """``version`` a non-negative int and ``timestamp`` a datetime or ISO string, not both."""
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise InvalidArgumentError(f"version must be a non-negative int or None, got {version!r}")
    if timestamp is not None and not isinstance(timestamp, (datetime.datetime, str)):
        raise InvalidArgumentError(
            f"timestamp must be a datetime or an ISO 8601 string (e.g. '2024-05-01T12:00:00Z'), got {timestamp!r}"
        )
    if isinstance(timestamp, str):
        try:
            datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError as err:
            raise InvalidArgumentError(
                f"timestamp must be an ISO 8601 string such as '2024-05-01T12:00:00Z', got {timestamp!r}"
            ) from err
    if version is not None and timestamp is not None:
        raise InvalidArgumentError(
            f"give version or timestamp, not both (got version={version}, timestamp={timestamp!r})"
        )


def has_deltalake() -> bool:
    """Whether ``deltalake`` can be imported here (the driver)."""
    try:
        import deltalake  # noqa: F401
    except ImportError:
        return False
    return True


def is_delta_table(path: str) -> bool:
    """Whether ``path`` is a folder with a ``_delta_log`` folder (looked up with pyarrow; False where
    pyarrow cannot look)."""
    import pyarrow.fs as pafs

    try:
        fs, p = arrow_filesystem(path)
        return bool(fs.get_file_info(f"{p.rstrip('/')}/_delta_log").type == pafs.FileType.Directory)
    except Exception:  # noqa: BLE001 - pyarrow cannot look there: not recognised as a Delta table
        return False
