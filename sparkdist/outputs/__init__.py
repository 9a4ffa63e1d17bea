"""Outputs: where ``output=`` writes a job's frames, from the executors, with one commit on the driver.

- ``api``: the argument checked and resolved on the driver (a path or ``ParquetData``: a Parquet
  dataset; ``DeltaData``: a Delta table), the wrapping of the user's function, the commit protocol's
  common part (abort on any failure, nothing committed after a cancel);
- ``writer``, ``sink``, ``schemas``, ``records``: what runs on executors (pyarrow only): the result
  written per partition folder, and the small record that travels back instead of the rows;
- ``parquet``: staging folder, renames into place, ``_SUCCESS``; ``delta``: files in the table's
  folder, one version committed with ``deltalake``.
"""

from __future__ import annotations

from sparkdist.outputs.api import Mode, Output, OutputArg, OutputDict, OutputList, resolve, with_output
from sparkdist.outputs.records import WriteReport

__all__ = ["Mode", "Output", "OutputArg", "OutputDict", "OutputList", "WriteReport", "resolve", "with_output"]
