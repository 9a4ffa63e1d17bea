"""A Delta table as an output: tasks write Parquet data files straight into the table's folder (and
its partition folders) under names unique to (job, task attempt); nothing reads a file the log does
not reference, so they stay invisible. The driver then commits one version whose add actions
(size, partition values, statistics) are the files of the attempts that succeeded, with
``deltalake``'s commit API (``create_table_with_add_actions`` for a new table,
``DeltaTable.create_write_transaction`` for an existing one), which writes ``_delta_log/N.json`` only
if absent and retries on a conflicting commit as the Delta protocol allows: two jobs appending at
once both land. A failed job commits nothing and removes the files it knows of; files of attempts
that died mid-write stay unreferenced until ``VACUUM``.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from sparkdist.errors import DataSourceError, DependencyError, EmptyDataError, InvalidArgumentError
from sparkdist.outputs.api import Output
from sparkdist.outputs.parquet import OutputExistsError, open_for_writing, visible_entries
from sparkdist.outputs.schemas import agree
from sparkdist.outputs.writer import Target
from sparkdist.sources import DeltaData
from sparkdist.sources.delta_log import has_deltalake, is_delta_table

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DeltaOutput"]

#: How often a commit is retried when another writer committed the same version first.
COMMIT_RETRIES = 100
JOB_KEY = "sparkdist.job"


class DeltaOutput(Output):
    def __init__(self, data: DeltaData, mode: str, partition_by: tuple[str, ...]) -> None:
        super().__init__(data.path, mode, partition_by)
        if data.version is not None or data.timestamp is not None:
            raise InvalidArgumentError(
                f"output=DeltaData('{data.path}', version=/timestamp=...) names an old version, but a job writes a "
                "new one: pass DeltaData(path) without version or timestamp"
            )
        if not has_deltalake():
            raise DependencyError(
                f"output=DeltaData('{data.path}') commits with the deltalake package on the driver (executors need "
                "only pyarrow), which is not installed here: pip install 'sparkdist[delta]'"
            )
        self.options = data.storage_options
        self.fs, self.root = open_for_writing(self.uri)
        self.exists = is_delta_table(self.uri)
        self.existing: pa.Schema | None = None
        self.replace = False  # overwrite with other partition columns: the table's metadata is replaced too
        self._check()

    def _check(self) -> None:
        import pyarrow as pa
        from deltalake import DeltaTable

        if not self.exists:
            try:
                entries = visible_entries(self.fs, self.root)
            except Exception as err:
                raise DataSourceError(f"cannot look at the output '{self.uri}': {type(err).__name__}: {err}") from err
            if entries:
                raise OutputExistsError(
                    f"output '{self.uri}' is not a Delta table but holds files ({entries[0].base_name}, ...); a Delta "
                    "table is written into an empty folder or an existing table"
                )
            return
        if self.mode == "error":
            raise OutputExistsError(
                f"output '{self.uri}' is a Delta table already and mode='error' (the default): pass mode='append' to "
                "add a version with the new rows, or mode='overwrite' to replace its rows in a new version"
            )
        table = DeltaTable(self.uri, storage_options=self.options)
        mapping = table.metadata().configuration.get("delta.columnMapping.mode") or "none"
        if mapping != "none":
            raise InvalidArgumentError(
                f"the Delta table '{self.uri}' uses column mapping (mode {mapping!r}): its data files name columns "
                "by physical names, which output= does not write. Write it with Spark's Delta writer, or write a "
                "new table"
            )
        parts = list(table.metadata().partition_columns)
        self.replace = self.mode == "overwrite" and bool(self.partition_by) and list(self.partition_by) != parts
        if not self.partition_by:
            self.partition_by = tuple(parts)
        elif list(self.partition_by) != parts and self.mode == "append":
            raise InvalidArgumentError(
                f"the Delta table '{self.uri}' is partitioned by {parts}; mode='append' writes the same partitions: "
                f"pass partition_by={parts} or leave it out"
            )
        if self.mode == "append":
            self.existing = pa.schema(table.schema().to_arrow())

    def target(self) -> Target:
        return Target("delta", self.fs, self.root, self.job, self.partition_by, self.existing)

    def _adds(self) -> list[Any]:
        from deltalake.transaction import AddAction

        now = int(time.time() * 1000)
        return [
            AddAction(
                path=f.path[len(self.root) + 1 :],  # relative to the table; deltalake encodes it for the log
                size=f.bytes,
                partition_values=dict(f.partition),
                modification_time=now,
                data_change=True,
                stats=f.stats or "",
            )
            for u in self.units
            for f in u.record.files
        ]

    def commit(self) -> DeltaData:
        schema = agree([(u.label, u.record.schema) for u in self.units if u.record.schema is not None], self.existing)
        if schema is None and not self.exists:
            raise EmptyDataError(
                f"no split returned a frame, so there is no schema to create the Delta table '{self.uri}' with; "
                "nothing was created. Return an empty DataFrame with the columns to create an empty table"
            )
        self.check_not_cancelled()
        version = self._commit(schema, self._adds())
        self.committed = True
        result = DeltaData(self.uri, version=version, storage_options=self.options)
        result.report = self.report(version)
        return result

    def _commit(self, schema: pa.Schema | None, adds: list[Any]) -> int:
        import pyarrow as pa
        from deltalake import DeltaTable, Schema
        from deltalake.transaction import CommitProperties, create_table_with_add_actions

        props = CommitProperties(custom_metadata={JOB_KEY: self.job}, max_commit_retries=COMMIT_RETRIES)
        if schema is not None:
            schema = pa.schema([pa.field(f.name, f.type, True) for f in schema])
        if not self.exists or self.replace:
            assert schema is not None
            try:
                create_table_with_add_actions(
                    self.uri,
                    Schema.from_arrow(schema),
                    adds,
                    mode="overwrite" if self.replace else "error",
                    partition_by=list(self.partition_by) or None,
                    storage_options=self.options,
                    commit_properties=props,
                )
                return self._version()
            except Exception as err:
                if self.replace or not is_delta_table(self.uri):
                    raise DataSourceError(f"cannot create the Delta table '{self.uri}': {err}") from err
                # another writer created it meanwhile: this job's files are added as a new version
        table = DeltaTable(self.uri, storage_options=self.options)
        if schema is None:
            schema = pa.schema(table.schema().to_arrow())
        try:
            table.create_write_transaction(
                adds,
                "overwrite" if self.mode == "overwrite" else "append",
                schema,
                partition_by=list(self.partition_by) or None,
                commit_properties=props,
            )
        except Exception as err:
            raise DataSourceError(
                f"cannot commit to the Delta table '{self.uri}': {type(err).__name__}: {err}"
            ) from err
        return self._version()

    def _version(self) -> int:
        """The version this job committed: the commit whose commitInfo names the job, read from the log
        itself (``DeltaTable.history`` numbers entries from the version it loaded, which a concurrent
        commit can make one off)."""
        import pyarrow.fs as pafs

        log = f"{self.root}/_delta_log"
        names = [i.base_name for i in self.fs.get_file_info(pafs.FileSelector(log))]
        versions = sorted(int(n[:20]) for n in names if len(n) == 25 and n.endswith(".json") and n[:20].isdigit())
        for version in reversed(versions[-(COMMIT_RETRIES + 10) :]):
            with self.fs.open_input_stream(f"{log}/{version:020d}.json") as stream:
                for line in stream.read().decode("utf-8").splitlines():
                    if '"commitInfo"' in line:
                        if json.loads(line)["commitInfo"].get(JOB_KEY) == self.job:
                            return version
                        break
        raise DataSourceError(f"the commit of {self.job} to the Delta table '{self.uri}' is not in its log")

    def abort(self) -> None:
        """Remove the files this job's succeeded tasks wrote (those of failed attempts removed
        themselves; those of killed ones stay unreferenced)."""
        for unit in self.units:
            for f in unit.record.files:
                with contextlib.suppress(Exception):  # an unreferenced file is invisible to readers
                    self.fs.delete_file(f.path)
