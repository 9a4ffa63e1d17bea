"""Paths of Parquet data: local paths and URIs, the file system that opens them, glob patterns, and
the errors that say why a path cannot be read.

One glob syntax on every file system: ``*``, ``?`` and ``[...]`` match within one path segment,
``**`` matches any number of segments. A path that exists is read as itself, even when it holds
glob characters (``runs/run[1]``).

>>> glob_regex("data/*.parquet").match("data/a.parquet") is not None
True
>>> glob_regex("data/*.parquet").match("data/x/a.parquet") is None
True
>>> glob_regex("data/**/*.parquet").match("data/x/y/a.parquet") is not None
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist.errors import ArgumentTypeError, DataNotFoundError, DataSourceError, SparkDistError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = [
    "DBFS_MOUNT",
    "ArrowOpenError",
    "Entry",
    "arrow_filesystem",
    "cannot_open",
    "expand",
    "glob_regex",
    "has_glob",
    "normalize_paths",
    "one_line",
    "scheme",
    "spark_reader_error",
    "spark_uri",
]

# "scheme://..." or "scheme:/..." (dbfs:/mnt/x). A one-letter scheme would be a Windows drive (C:/data).
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):/")
#: Where Databricks mounts DBFS on its machines: dbfs:/mnt/x is /dbfs/mnt/x there.
DBFS_MOUNT = "/dbfs"
#: Schemes Spark reads through Hadoop file systems (when their connector is installed).
_HADOOP_SCHEMES = frozenset(
    {"hdfs", "viewfs", "webhdfs", "swebhdfs", "har", "s3a", "s3n", "abfs", "abfss", "wasb", "wasbs", "adl", "gs",
     "oss", "cos", "cosn", "obs", "ofs", "o3fs", "jfs", "dbfs"}
)  # fmt: skip


def normalize_paths(path: Any) -> list[str]:
    """The user's ``path`` argument as a list of strings: local paths made absolute, URIs kept."""
    items = [path] if isinstance(path, (str, os.PathLike)) else path
    if not isinstance(items, (list, tuple)) or not items:
        raise ArgumentTypeError(
            f"path must be a str, an os.PathLike or a non-empty list of them, got {type(path).__name__}"
        )
    out = []
    for p in items:
        if not isinstance(p, (str, os.PathLike)):
            raise ArgumentTypeError(f"path entries must be str or os.PathLike, got {type(p).__name__}: {p!r}")
        s = os.fspath(p)
        if scheme(s) is None:  # a local path (/Volumes/... included): made absolute
            s = os.path.abspath(os.path.expanduser(s))
        out.append(s)
    return out


def scheme(path: str) -> str | None:
    """The URI scheme of ``path`` (lower case), None for a local path.

    >>> scheme("s3://bucket/x"), scheme("dbfs:/mnt/x"), scheme("/data/x"), scheme("C:/data")
    ('s3', 'dbfs', None, None)
    """
    m = _URI.match(path)
    return m.group("scheme").lower() if m else None


def spark_uri(path: str) -> str:
    """``path`` as Spark's reader takes it (local paths as ``file://`` URIs)."""
    return path if scheme(path) is not None else "file://" + path


def _dbfs_local(path: str) -> str | None:
    """``dbfs:/mnt/x`` as ``/dbfs/mnt/x`` when this machine has the DBFS mount, else None."""
    if not os.path.isdir(DBFS_MOUNT):
        return None
    return os.path.join(DBFS_MOUNT, path.split(":", 1)[1].lstrip("/"))


class ArrowOpenError(DataSourceError):
    """pyarrow on the driver cannot list or open a path (unknown scheme, missing native library,
    credentials, ...). In a Spark context with engine "auto" Spark's reader is tried instead."""

    def __init__(self, message: str, *, path: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


def cannot_open(path: str, reason: str, engine: str = "auto") -> ArrowOpenError:
    """The error for a path pyarrow cannot open, saying what to do for its kind of path."""
    kind = scheme(path) or "file"
    native = ""
    if kind in ("hdfs", "viewfs"):
        native = "; pyarrow's HDFS client needs libhdfs and a JVM (JAVA_HOME, HADOOP_HOME, CLASSPATH)"
    if engine == "arrow":
        message = (
            f"engine='arrow' reads '{path}' with pyarrow, which cannot open it: {reason}. Use engine='auto' or "
            f"'spark' in a Spark compute context to read it with Spark's reader, or set up pyarrow's file system "
            f"for '{kind}' paths (pyarrow.fs: credentials, native libraries{native})."
        )
    elif kind == "dbfs":
        message = (
            f"pyarrow cannot open '{path}': {reason}. pyarrow reads dbfs:/ paths through the {DBFS_MOUNT} mount "
            f"(dbfs:/mnt/x is {DBFS_MOUNT}/mnt/x); in a Spark compute context sparkdist reads them with Spark's "
            "reader instead."
        )
    elif kind in _HADOOP_SCHEMES:
        message = (
            f"pyarrow cannot open '{path}': {reason}. '{kind}' is a Hadoop file system scheme: in a Spark compute "
            f"context sparkdist reads it with Spark's reader (engine='auto' or 'spark'); outside Spark, pyarrow "
            f"needs a file system for it{native}."
        )
    else:
        message = (
            f"pyarrow cannot open '{path}': {reason}. Check the path (pyarrow opens local paths and the URIs "
            "pyarrow.fs knows: file://, s3://, gs://, abfss://, hdfs://) and, for remote storage, pyarrow's "
            "credentials; in a Spark compute context sparkdist tries Spark's reader when pyarrow cannot open a path."
        )
    return ArrowOpenError(message, path=path, reason=reason)


# A Java class name opening a line, as in "org.apache.hadoop.fs.UnsupportedFileSystemException: ..."
# or Spark Connect's "(org.apache...Exception) ...": the line names its own type.
_JAVA_CLASS = re.compile(r"^\(?[a-z][\w$]*(?:\.[a-z][\w$]*)*\.[A-Z][\w$]*\)?[:\s]")


def one_line(err: BaseException, limit: int = 300) -> str:
    """An error as one line: its type and the first line of its message, without Py4J's preamble
    or a JVM stack.

    >>> one_line(ValueError("bad\\nmore"))
    'ValueError: bad'
    """
    line = ""
    for raw in str(err).splitlines():
        text = raw.strip().lstrip(":").strip()
        if text and not text.startswith(("An error occurred while calling", "at ", "JVM stacktrace")):
            line = text
            break
    if not line:
        return type(err).__name__
    if not _JAVA_CLASS.match(line):
        line = f"{type(err).__name__}: {line}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def spark_reader_error(paths: Sequence[str], err: BaseException, arrow_reason: str | None = None) -> DataSourceError:
    """Spark's reader failed on ``paths`` (after pyarrow did, when ``arrow_reason`` is given): a
    DataSourceError (DataNotFoundError for a missing path) naming each attempt in one line."""
    where = ", ".join(paths)
    spark = one_line(err)
    not_found = any(t in spark for t in ("PATH_NOT_FOUND", "Path does not exist", "FileNotFoundException"))
    cls = DataNotFoundError if not_found else DataSourceError
    if "COLUMN_ALREADY_EXISTS" in spark:
        return DataSourceError(
            f"Spark's reader (spark.read.parquet) cannot read the Parquet data at '{where}': {spark}. Spark "
            "compares column names without case: read names that differ only in case with engine='arrow', "
            "or set spark.sql.caseSensitive=true in the session."
        )
    if arrow_reason is None:
        return cls(
            f"Spark's reader (spark.read.parquet) cannot read the Parquet data at '{where}': {spark}. Check the "
            "path, and that Spark has a file system (and credentials) for its scheme."
        )
    return cls(
        f"cannot read the Parquet data at '{where}' with either reader:\n"
        f"  pyarrow (on the driver): {arrow_reason}\n"
        f"  Spark's reader (spark.read.parquet): {spark}\n"
        "Check the path. Spark's reader opens the schemes it has a Hadoop file system (and credentials) for; "
        "pyarrow the ones pyarrow.fs opens."
    )


def arrow_filesystem(path: str, filesystem: pafs.FileSystem | None = None) -> tuple[pafs.FileSystem, str]:
    """pyarrow's file system for ``path`` and the path on it (a URI's query options, such as
    ``?endpoint_override=...``, configure the file system and are not part of the path);
    ArrowOpenError when pyarrow has none. With ``filesystem`` given, ``path`` is a path on it."""
    import pyarrow.fs as pafs

    if filesystem is not None:
        return filesystem, path
    kind = scheme(path)
    if kind is None:
        return pafs.LocalFileSystem(), path
    if kind == "dbfs":
        local = _dbfs_local(path)
        if local is None:
            raise cannot_open(path, f"no {DBFS_MOUNT} mount on this machine")
        return pafs.LocalFileSystem(), local
    try:
        fs, on_fs = pafs.FileSystem.from_uri(path)
        return fs, str(on_fs)
    except Exception as err:  # a scheme pyarrow does not know, a native library missing, ...
        raise cannot_open(path, one_line(err)) from err


def has_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression for a glob pattern: ``*``, ``?`` and ``[...]`` stay within one path
    segment, ``**`` spans any number of them."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Entry:
    """A file of the data, and the folder its hive ``key=value`` folders are counted from."""

    path: str
    base: str


def _is_hidden(rel: str) -> bool:
    # Like Spark: any path component starting with "_" or "." is ignored, except "key=value" folders.
    return any((part.startswith(("_", ".")) and "=" not in part) for part in rel.split("/") if part)


#: Table formats whose folders hold Parquet files that a plain Parquet reading would get wrong
#: (files the table has removed are still there): what marks them, and how Spark reads them.
TABLE_FORMATS = (
    ("Delta Lake", "_delta_log/", 'spark.read.format("delta").load(path)'),
    ("Apache Hudi", ".hoodie/", 'spark.read.format("hudi").load(path)'),
    ("Apache Iceberg", "metadata/", 'spark.read.format("iceberg").load(path) or spark.table(name)'),
)


def table_format(relative_paths: Sequence[str]) -> tuple[str, str, str] | None:
    """The table format whose marker folder is among ``relative_paths`` (paths under a data folder)."""
    for name, marker, how in TABLE_FORMATS:
        for rel in relative_paths:
            if rel.startswith(marker) and (marker != "metadata/" or rel.endswith(".metadata.json")):
                return name, marker, how
    return None


def _table_folder_error(path: str, found: tuple[str, str, str]) -> DataSourceError:
    name, marker, how = found
    if name == "Delta Lake":
        return DataSourceError(
            f"'{path}' is a Delta Lake table folder (it has {marker}): reading its Parquet files as plain Parquet "
            "would include rows and files the table has deleted. Read it with sparkdist.DeltaData(path), which "
            "needs the deltalake package on the driver: pip install 'sparkdist[delta]' (a plain path to the table "
            f"is read so once it is installed); or with Spark ({how}) and pass that DataFrame as data. "
            "ParquetData(..., read_table_files=True) reads every Parquet file in the folder anyway."
        )
    return DataSourceError(
        f"'{path}' is a {name} table folder (it has {marker}): reading its Parquet files as plain Parquet "
        "would include files the table has removed or replaced. Read the table with Spark "
        f"({how}) and pass that DataFrame as data, or pass ParquetData(..., read_table_files=True) to read "
        "every Parquet file in the folder anyway."
    )


def refuse_table_folders(paths: Sequence[str], filesystem: pafs.FileSystem | None = None) -> None:
    """Raise if a folder among ``paths`` is a Delta Lake, Hudi or Iceberg table (looked up with
    pyarrow without listing the data; paths pyarrow cannot open on the driver are not checked)."""
    import pyarrow.fs as pafs

    for path in paths:
        if has_glob(path):
            continue
        try:
            fs, p = arrow_filesystem(path, filesystem)
            markers = [f"{p.rstrip('/')}/{marker.rstrip('/')}" for _, marker, _ in TABLE_FORMATS]
            present = [i.path for i in fs.get_file_info(markers) if i.type == pafs.FileType.Directory]
            listed = [
                i.path[len(p.rstrip("/")) :].lstrip("/")
                for folder in present
                for i in fs.get_file_info(pafs.FileSelector(folder))
            ]
        except Exception:  # noqa: BLE001 - pyarrow cannot look there: Spark's reader alone decides
            continue
        found = table_format(listed)
        if found is not None:
            raise _table_folder_error(path, found)


def expand(path: str, fs: pafs.FileSystem, p: str, *, read_table_files: bool = False) -> list[Entry]:
    """The files a user path names (``p`` on ``fs``): the path itself when it exists (a file, or the
    visible non-empty files under a folder), else the matches of it as a glob pattern. A folder of a
    Delta Lake, Hudi or Iceberg table is refused unless ``read_table_files``."""
    import pyarrow.fs as pafs

    try:
        info = fs.get_file_info(p)
        if info.type == pafs.FileType.File:
            return [Entry(p, p.rsplit("/", 1)[0] if "/" in p else "")]
        if info.type == pafs.FileType.Directory:
            files = _files_under(fs, p, refuse_tables=not read_table_files, shown=path)
            if not files:
                raise DataNotFoundError(f"directory '{path}' holds no Parquet files")
            return [Entry(f, p) for f in files]
        if not has_glob(p):
            raise DataNotFoundError(f"path '{path}' does not exist")
        return _glob(path, fs, p)
    except SparkDistError:
        raise
    except Exception as err:  # listing failed: credentials, network, permissions, ...
        raise cannot_open(path, one_line(err)) from err


def _files_under(fs: pafs.FileSystem, folder: str, *, refuse_tables: bool = False, shown: str = "") -> list[str]:
    """Like Spark: hidden and "_" files are ignored, and so are 0-byte files (e.g. _SUCCESS markers)."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(folder, recursive=True))
    found = table_format([i.path[len(folder) :].lstrip("/") for i in infos])
    if found is not None and refuse_tables:
        raise _table_folder_error(shown or folder, found)
    if found is not None:  # read anyway: the data files, not the table's own (e.g. Iceberg's metadata/)
        infos = [i for i in infos if not i.path[len(folder) :].lstrip("/").startswith(found[1])]
    return sorted(
        i.path for i in infos if i.type == pafs.FileType.File and i.size and not _is_hidden(i.path[len(folder) :])
    )


def _glob(path: str, fs: pafs.FileSystem, pattern: str) -> list[Entry]:
    """The files matching ``pattern`` (folders that match contribute their files); hive folders are
    counted from the pattern's last folder without glob characters."""
    import pyarrow.fs as pafs

    static = pattern[: min(pattern.index(c) for c in "*?[" if c in pattern)]
    base = static.rsplit("/", 1)[0] if "/" in static else ""
    regex = glob_regex(pattern)
    infos = fs.get_file_info(pafs.FileSelector(base or "/", recursive=True, allow_not_found=True))
    matches = sorted((i for i in infos if regex.match(i.path)), key=lambda i: i.path)
    entries: list[Entry] = []
    for info in matches:
        if info.type == pafs.FileType.File and info.size and not _is_hidden(info.path[len(base) :]):
            entries.append(Entry(info.path, base))
        elif info.type == pafs.FileType.Directory:
            entries += [Entry(f, base) for f in _files_under(fs, info.path)]
    if not entries:
        raise DataNotFoundError(f"no files match the pattern '{path}'")
    return entries
