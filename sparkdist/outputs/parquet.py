"""A Parquet dataset as an output: tasks write under the job's private staging folder
``<output>/_sparkdist_temporary/<job>/`` (each attempt under names of its own); the driver commits
the files of the attempts that succeeded by renaming them into place under names fixed by (job,
split/group/call, file), then writes ``_SUCCESS``. ``mode="overwrite"`` removes the old files only at commit; a failed, cancelled
or interrupted job removes its staging folder and leaves the output as it was.

What holds for plain Parquet (it has no log): readers never see a task's files before the commit, and
each split's rows are there exactly once after it. The commit itself is a series of renames (as
Spark's ``FileOutputCommitter``): a reader listing the folder during those milliseconds may see part
of the new files; ``_SUCCESS`` is written last. Two jobs appending to one folder at once each add
their own files (names differ by job); two overwriting at once race as they would in Spark.
"""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any

from sparkdist.errors import DataSourceError, InvalidArgumentError, SparkDistError
from sparkdist.outputs.api import Output
from sparkdist.outputs.schemas import agree
from sparkdist.outputs.writer import Target
from sparkdist.sources import ParquetData
from sparkdist.sources.discovery import partition_type
from sparkdist.sources.paths import ArrowOpenError, arrow_filesystem, normalize_paths, table_format

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = ["STAGING", "OutputExistsError", "ParquetOutput"]

#: The folder (hidden from readers by its leading "_") where jobs stage their files.
STAGING = "_sparkdist_temporary"


class OutputExistsError(SparkDistError, FileExistsError):
    """``mode="error"`` and the output already holds data."""


def open_for_writing(uri: str, filesystem: pafs.FileSystem | None = None) -> tuple[pafs.FileSystem, str]:
    """pyarrow's file system for an output and the path on it (executors write with pyarrow)."""
    try:
        fs, root = arrow_filesystem(uri, filesystem)
    except ArrowOpenError as err:
        raise DataSourceError(
            f"output= writes with pyarrow, on the executors and the driver, and pyarrow cannot open '{uri}': "
            f"{err.reason}. Write to a path pyarrow opens (local, file://, s3://, gs://, abfss://, hdfs:// with "
            "libhdfs; dbfs:/ where the /dbfs mount exists)"
        ) from err
    return fs, root.rstrip("/")


def visible_entries(fs: pafs.FileSystem, root: str) -> list[Any]:
    """What the folder holds, except the staging folder of jobs."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return [i for i in infos if i.base_name != STAGING]


class ParquetOutput(Output):
    def __init__(
        self, path: str, mode: str, partition_by: tuple[str, ...], filesystem: pafs.FileSystem | None = None
    ) -> None:
        uri = normalize_paths(path)[0] if filesystem is None else path
        super().__init__(uri, mode, partition_by)
        self.given_fs = filesystem
        self.fs, self.root = open_for_writing(uri, filesystem)
        self.staging = f"{self.root}/{STAGING}/{self.job}"
        self.existing: pa.Schema | None = None  # the data columns of the files already there (append)
        self._check()
        self.made_root = False

    def _check(self) -> None:
        import pyarrow.fs as pafs

        try:
            info = self.fs.get_file_info(self.root)
            entries = visible_entries(self.fs, self.root) if info.type == pafs.FileType.Directory else []
        except Exception as err:
            raise DataSourceError(f"cannot look at the output '{self.uri}': {type(err).__name__}: {err}") from err
        if info.type == pafs.FileType.File:
            raise InvalidArgumentError(f"output '{self.uri}' is a file; output= names the folder of a dataset")
        names = [e.base_name + ("/" if e.type == pafs.FileType.Directory else "") for e in entries]
        found = table_format(names)
        if found is not None:
            raise InvalidArgumentError(
                f"output '{self.uri}' is a {found[0]} table folder (it has {found[1]}); writing plain Parquet files "
                "into it would bypass the table's log. "
                + ("Pass output=sparkdist.DeltaData(path) to write the table" if found[0] == "Delta Lake" else "")
            )
        data = [e for e in entries if not e.base_name.startswith(("_", "."))]
        if data and self.mode == "error":
            raise OutputExistsError(
                f"output '{self.uri}' already holds data ({', '.join(e.base_name for e in data[:3])}"
                f"{' ...' if len(data) > 3 else ''}) and mode='error' (the default): pass mode='append' to add to "
                "it or mode='overwrite' to replace it, or write to another folder"
            )
        if data and self.mode == "append":
            self._existing_schema()

    def _existing_schema(self) -> None:
        try:
            existing = ParquetData(self.uri, filesystem=self.given_fs)
            schema = existing.arrow_schema()
            parts = existing._discover().partition_names  # noqa: SLF001 - a source of this package
        except SparkDistError as err:
            raise DataSourceError(f"mode='append' cannot read the output '{self.uri}' that is there: {err}") from err
        if parts and set(parts) != set(self.partition_by):
            raise InvalidArgumentError(
                f"output '{self.uri}' is partitioned by {parts}; mode='append' must write the same folders: pass "
                f"partition_by={parts}"
            )
        self.existing = schema

    def begin(self) -> None:
        import pyarrow.fs as pafs

        made = self.fs.get_file_info(self.root).type == pafs.FileType.NotFound
        try:
            self.fs.create_dir(self.staging, recursive=True)
        except Exception as err:
            raise DataSourceError(f"cannot write to the output '{self.uri}': {type(err).__name__}: {err}") from err
        self.made_root = self.made_root or made

    def target(self) -> Target:
        return Target("parquet", self.fs, self.staging, self.job, self.partition_by, self.existing)

    def commit(self) -> ParquetData:
        schema = agree([(u.label, u.record.schema) for u in self.units if u.record.schema is not None], self.existing)
        self.check_not_cancelled()
        self.committed = True  # a failure from here on leaves the output as far as it got
        if self.mode == "overwrite":
            self._clear()
        moves = []
        for unit in self.units:
            for n, f in enumerate(unit.record.files):
                name = f"part-{unit.index:05d}-{n:03d}-{self.job}.parquet"
                moves.append((f.path, "/".join(p for p in (self.root, f.folder, name) if p)))
        for folder in sorted({dst.rsplit("/", 1)[0] for _, dst in moves}):
            self.fs.create_dir(folder, recursive=True)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda m: self.fs.move(*m), moves))
        with self.fs.open_output_stream(f"{self.root}/_SUCCESS"):
            pass
        self._remove_staging()
        result = ParquetData(self.uri, filesystem=self.given_fs, schema=self._read_schema(schema))
        result.report = self.report()
        return result

    def _read_schema(self, agreed: pa.Schema | None) -> pa.Schema | None:
        """The schema to read the output with when its files differ in types (widened), else None."""
        import pyarrow as pa

        if agreed is None:
            return None
        data = pa.schema([f for f in agreed if f.name not in self.partition_by])
        schemas = [u.record.schema for u in self.units if u.record.schema is not None]
        own = [pa.schema([f for f in s if f.name not in self.partition_by]) for s in schemas]
        if self.existing is not None:
            own.append(pa.schema([f for f in self.existing if f.name not in self.partition_by]))
        if all(s.equals(data) for s in own):
            return None
        values: dict[str, list[str]] = {}
        for unit in self.units:
            for f in unit.record.files:
                for column, value in f.partition:
                    if value is not None:
                        values.setdefault(column, []).append(value)
        known = self.existing
        parts = [
            known.field(c) if known is not None and c in known.names else pa.field(c, partition_type(values.get(c, [])))
            for c in self.partition_by
        ]
        return pa.schema(list(data) + parts)

    def _clear(self) -> None:
        """Overwrite: the old files go, at commit (the staging folder of jobs stays)."""
        import pyarrow.fs as pafs

        for entry in visible_entries(self.fs, self.root):
            if entry.type == pafs.FileType.Directory:
                self.fs.delete_dir(entry.path)
            else:
                self.fs.delete_file(entry.path)

    def _remove_staging(self) -> None:
        import pyarrow.fs as pafs

        try:
            self.fs.delete_dir(self.staging)
            parent = f"{self.root}/{STAGING}"
            if not self.fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True)):
                self.fs.delete_dir(parent)
        except Exception:  # noqa: BLE001 - a hidden folder left behind is harmless to readers
            pass

    def abort(self) -> None:
        import pyarrow.fs as pafs

        self._remove_staging()
        if self.made_root:  # the job made the folder: it goes too, if nothing else is in it
            try:
                if not self.fs.get_file_info(pafs.FileSelector(self.root)):
                    self.fs.delete_dir(self.root)
            except Exception:  # noqa: BLE001 - an empty folder left behind holds no data
                pass
