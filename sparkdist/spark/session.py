"""Sessions: building one (or finding it cannot be), and making sparkdist's own code importable on
its executors."""

from __future__ import annotations

import atexit
import hashlib
import importlib.resources
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist import _compat
from sparkdist.errors import ComputeContextError, DependencyError, ServerUnreachableError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "Recipe",
    "build",
    "check_reachable",
    "configured_master",
    "configured_remote",
    "package_zip",
    "require_pyspark",
    "select",
    "ship",
    "spark_defaults",
]

log = logging.getLogger("sparkdist")


@dataclass(frozen=True)
class Recipe:
    """How to build a session: where (``master`` for classic Spark, ``remote`` for Spark Connect),
    its name, resources and further settings."""

    master: str | None
    remote: str | None
    app_name: str
    resources: dict[str, Any]
    spark_config: dict[str, Any]


def build(recipe: Recipe) -> tuple[SparkSession, bool]:
    """Build (or get) the session; True when it is a new one (then the context may stop it). For local
    masters ``PYSPARK_PYTHON`` points at this interpreter (unless set) and Spark binds to 127.0.0.1."""
    from pyspark.sql import SparkSession

    # no master given: Spark's own choice (spark-submit's --master, spark.master in spark-defaults.conf,
    # MASTER, else local[*]), which a master set here would override
    target = recipe.remote or recipe.master or configured_master() or "local[*]"
    under_submit = recipe.master is None and "PYSPARK_GATEWAY_PORT" in os.environ  # its JVM knows the master
    local = (recipe.remote is None and not under_submit and _compat.is_local_master(target)) or (
        recipe.remote is not None and not recipe.remote.startswith("sc://")
    )
    if recipe.remote is not None and not local:
        check_reachable(recipe.remote)
    builder = SparkSession.builder
    if recipe.remote or recipe.master:
        builder = builder.remote(recipe.remote) if recipe.remote else builder.master(target)
    elif not under_submit:
        builder = builder.master(target)
    builder = builder.appName(recipe.app_name)
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    if not recipe.remote:  # sparkdist draws its own progress bars: no second one from Spark's console
        builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in recipe.resources.items():
        if value is not None:
            builder = builder.config(key, str(value))
    for key, value in recipe.spark_config.items():
        builder = builder.config(str(key), str(value).lower() if isinstance(value, bool) else str(value))
    for key, value in address_limit_settings(recipe.spark_config).items():
        builder = builder.config(key, value)
    before = _compat.active_session()
    with warnings.catch_warnings():
        # Connect re-applies builder settings at runtime and warns that static ones (already
        # given to the local server at start-up) cannot be modified: expected, not news.
        warnings.filterwarnings("ignore", message=r"Failed to set spark\..*CANNOT_MODIFY_CONFIG", category=UserWarning)
        session = builder.getOrCreate()
    log.info(
        "sparkdist: using %s Spark session (%s)", "a Connect" if _compat.is_connect(session) else "a classic", target
    )
    return session, session is not before


#: What a Python worker needs when ``spark.executor.pyspark.memory`` limits its address space: Arrow's
#: default allocator (mimalloc or jemalloc) reserves about 1 GB of address space as it starts, so a
#: worker far within the limit in memory fails to allocate; the system allocator reserves nothing.
#: glibc's allocator, with its mmap threshold fixed, hands blocks of 1 MiB and more back to the system
#: when freed, so a long task's address space does not grow with fragments.
ADDRESS_LIMIT_ENV = {
    "spark.executorEnv.ARROW_DEFAULT_MEMORY_POOL": "system",
    "spark.executorEnv.MALLOC_MMAP_THRESHOLD_": "1048576",
    "spark.executorEnv.MALLOC_ARENA_MAX": "2",
}


def address_limit_settings(spark_config: dict[str, Any]) -> dict[str, str]:
    """Settings to add to a session sparkdist builds: Arrow's system allocator on the executors when
    ``spark.executor.pyspark.memory`` is set (unless the configuration chooses an allocator itself).

    >>> sorted(address_limit_settings({"spark.executor.pyspark.memory": "512m"}))
    ['spark.executorEnv.ARROW_DEFAULT_MEMORY_POOL', 'spark.executorEnv.MALLOC_ARENA_MAX', 'spark.executorEnv.MALLOC_MMAP_THRESHOLD_']
    >>> address_limit_settings({})
    {}
    """
    if "spark.executor.pyspark.memory" not in spark_config:
        return {}
    return {k: v for k, v in ADDRESS_LIMIT_ENV.items() if k not in spark_config}


def ship(session: SparkSession) -> None:
    """Make this sparkdist importable on the session's executors (its zip, once per session)."""
    try:
        _compat.ship_python_file(session, package_zip())
    except Exception as err:  # already added (same file, same session) is fine
        if "already" not in str(err).lower() and "exist" not in str(err).lower():
            raise


def select(
    session: SparkSession | None, master: str | None, remote: str | None, building: list[str]
) -> tuple[SparkSession | None, str | None]:
    """(session, remote) as PySpark users select them when the arguments do not: the session already
    active (a notebook's ``spark``, a ``DatabricksSession``), else ``SPARK_REMOTE`` or ``spark.remote``
    in spark-defaults.conf for Spark Connect; an explicit ``master`` keeps classic Spark."""
    if session is not None or remote is not None:
        return session, remote
    if master is not None:
        if os.environ.get("SPARK_REMOTE"):
            raise ComputeContextError(
                f"master={master!r} asks for classic Spark, but SPARK_REMOTE={os.environ['SPARK_REMOTE']!r} makes "
                "pyspark build Spark Connect sessions: unset SPARK_REMOTE, or pass remote= instead of master="
            )
        return None, None
    active = None if building else _compat.active_session()
    return (active, None) if active is not None else (None, configured_remote())


def spark_defaults(folder: str | None = None) -> dict[str, str]:
    """The settings of the ``spark-defaults.conf`` that Spark reads: in ``folder``, else
    ``$SPARK_CONF_DIR``, else the ``conf`` folder of ``$SPARK_HOME`` (or of the installed pyspark);
    empty where there is none.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> text = "# a comment\\nspark.remote   sc://spark.example.com:15002\\nspark.master=local[3]\\n"
    >>> _ = (folder / "spark-defaults.conf").write_text(text)
    >>> sorted(spark_defaults(str(folder)).items())
    [('spark.master', 'local[3]'), ('spark.remote', 'sc://spark.example.com:15002')]
    """
    import importlib.util
    import re

    folder = folder or os.environ.get("SPARK_CONF_DIR")
    if folder is None:
        home = os.environ.get("SPARK_HOME")
        if home is None:
            spec = importlib.util.find_spec("pyspark")
            home = os.path.dirname(spec.origin) if spec is not None and spec.origin else None
        folder = os.path.join(home, "conf") if home else None
    settings: dict[str, str] = {}
    try:
        with open(os.path.join(folder or "", "spark-defaults.conf"), encoding="utf-8") as lines:
            for line in lines:  # Java properties: "key value", "key=value" or "key: value"; # and ! comment
                match = re.match(r"\s*([^\s=:#!][^\s=:]*)\s*[=:\s]\s*(.*?)\s*$", line)
                if match:
                    settings[match.group(1)] = match.group(2)
    except OSError:  # no such file: no settings
        pass
    return settings


def configured_remote() -> str | None:
    """The Spark Connect server PySpark users have chosen: ``SPARK_REMOTE``, else ``spark.remote`` in
    spark-defaults.conf; None for classic Spark."""
    return os.environ.get("SPARK_REMOTE") or spark_defaults().get("spark.remote") or None


def configured_master() -> str | None:
    """The classic master chosen outside the code: ``spark.master`` in spark-defaults.conf, else ``MASTER``."""
    return spark_defaults().get("spark.master") or os.environ.get("MASTER") or None


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """Raise ServerUnreachableError (a ConnectionError), naming ``url``, when nothing accepts connections
    at a Spark Connect URL (``sc://host:port/;params``); pyspark itself would retry for minutes first.

    >>> check_reachable("sc://127.0.0.1:1")
    Traceback (most recent call last):
    ...
    sparkdist.errors.ServerUnreachableError: cannot reach the Spark Connect server at sc://127.0.0.1:1 (127.0.0.1:1): ConnectionRefusedError: [Errno 111] Connection refused. Check that the server runs and the host and port are right (the default port is 15002).
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url.split(";", 1)[0])
    host, port = parts.hostname or "localhost", parts.port or 15002
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ServerUnreachableError(
            f"cannot reach the Spark Connect server at {url} ({host}:{port}): {type(err).__name__}: {err}. "
            "Check that the server runs and the host and port are right (the default port is 15002)."
        ) from err


_zip_lock = threading.Lock()
_zip_path: str | None = None


def package_zip() -> str:
    """A zip of this sparkdist package (built once per process, in a directory private to the user).

    Works wherever sparkdist was imported from: a folder, or itself a zip or wheel on the path (as
    with ``spark-submit --py-files sparkdist.whl``)."""
    global _zip_path
    with _zip_lock:
        if _zip_path is None or not os.path.exists(_zip_path):
            files = sorted(_package_files(importlib.resources.files("sparkdist"), "sparkdist"))
            digest = hashlib.sha256()
            for name, data in files:
                digest.update(name.encode() + data)
            tmp = tempfile.mkdtemp(prefix="sparkdist-")  # mode 0700
            atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # nothing left in /tmp after exit
            path = os.path.join(tmp, f"sparkdist_{digest.hexdigest()[:12]}.zip")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in files:
                    zf.writestr(name, data)
            os.chmod(path, 0o600)
            _zip_path = path
        return _zip_path


def _package_files(folder: Any, prefix: str) -> Iterator[tuple[str, bytes]]:
    """(name in the zip, content) of the package's source files, from a folder or an archive."""
    for item in folder.iterdir():
        if item.is_dir():
            if item.name != "__pycache__":
                yield from _package_files(item, f"{prefix}/{item.name}")
        elif item.name.endswith(".py") or item.name == "py.typed":
            yield f"{prefix}/{item.name}", item.read_bytes()


def require_pyspark(*, classic: bool, connect: bool) -> None:
    """Raise DependencyError (an ImportError), saying what to install, when this Python lacks the pyspark
    that a Spark context needs (classic: the full pyspark; Connect: pyspark with its Connect dependencies)."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise DependencyError(
            "SparkComputeContext needs pyspark, which is not installed: pip install 'sparkdist[spark]' "
            "(classic Spark) or 'sparkdist[connect]' (Spark Connect); the Local contexts need neither"
        )
    if connect and importlib.util.find_spec("grpc") is None:
        raise DependencyError(
            "Spark Connect needs pyspark's Connect dependencies (grpcio, ...), which are not installed: "
            "pip install 'sparkdist[connect]'"
        )
    if classic:
        try:
            from pyspark.util import is_remote_only  # pyspark >= 4.0
        except ImportError:
            return
        if is_remote_only():
            raise DependencyError(
                "this pyspark is the Spark Connect client only (pyspark-client), which cannot run classic "
                "Spark: pass remote='sc://host:port', or pip install 'sparkdist[spark]' for the full pyspark"
            )
