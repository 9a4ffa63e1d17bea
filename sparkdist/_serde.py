"""Pickling of tasks and results: cloudpickle for what we send, chunking for what comes back.

sparkdist only ever unpickles bytes produced by its own tasks (results and errors), never
anything supplied from outside.
"""

from __future__ import annotations

import functools
import os
import pickle
import site
import sys
import sysconfig
import threading
import types
from collections.abc import Iterator
from typing import Any

from sparkdist import _compat
from sparkdist.errors import NotPicklableError

#: Results are cut into parts of this many bytes so that no single Arrow cell or Spark Connect
#: message grows past its limits, however large one split's result is.
PART_BYTES = 4 * 1024 * 1024


def dumps(obj: Any) -> bytes:
    """Pickle with cloudpickle, for sending work from the driver. Code from ``__main__``, notebooks
    and the user's own modules (those not installed with the interpreter, which executors may not
    be able to import) goes by value."""
    cp = _compat.cloudpickle()
    registered = cp.list_registry_pickle_by_value()  # the user's own registrations stay as they are
    own = [m for m in _user_modules() if m.__name__ not in registered]
    if not own:
        return bytes(cp.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    # cloudpickle's by-value registry is process-wide: register, pickle and unregister as one step,
    # so that jobs submitted from several threads do not undo each other's registrations.
    with _by_value_lock:
        for mod in own:
            cp.register_pickle_by_value(mod)
        try:
            return bytes(cp.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        finally:
            for mod in own:
                cp.unregister_pickle_by_value(mod)


def dumps_result(obj: Any) -> bytes:
    """Pickle a result on a worker, to send it back to the driver.

    Nothing is registered by value here: what came from the driver's own code was rebuilt on the
    worker from its pickled value, and cloudpickle sends such classes and functions back by value
    by itself (their module cannot be imported here). Worker environments load libraries from
    places the driver's rules for "user code" would misread (pyspark from ``$SPARK_HOME``'s zips).
    """
    return bytes(_compat.cloudpickle().dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


_module_is_user: dict[str, bool] = {}
_lock = threading.Lock()
_by_value_lock = threading.Lock()
#: Never user code, wherever they are loaded from (Databricks and spark-submit load them from
#: ``$SPARK_HOME/python``, outside the interpreter's install folders).
_NEVER_BY_VALUE = frozenset({"sparkdist", "__main__", "pyspark", "py4j"})


def _install_dirs() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= set(site.getsitepackages()) if hasattr(site, "getsitepackages") else set()
    paths.add(site.getusersitepackages())
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    spark_home = os.environ.get("SPARK_HOME")
    if spark_home:
        paths.add(spark_home)
    # the sys.path entry pyspark itself came from (a folder or a zip) holds Spark's code, not the user's
    for name in ("pyspark", "py4j"):
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            paths.add(os.path.dirname(os.path.dirname(file)))
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


def _is_user_file(file: str, install_dirs: tuple[str, ...]) -> bool:
    """A module file the executors may not be able to import: outside the install folders and not
    inside an archive (zips on sys.path, like ``--py-files``, are shipped to executors by Spark)."""
    real = os.path.realpath(file)
    if real.startswith(install_dirs):
        return False
    return not any(f"{ext}{os.sep}" in real for ext in (".zip", ".egg", ".whl", ".pex"))


@functools.cache
def _installed_in(folder: str) -> frozenset[str]:
    """Top-level modules that pip (or any installer writing ``*.dist-info``) installed into ``folder``.

    A library can sit outside the interpreter's own folders (a venv that sees another environment's
    site-packages through a .pth file, PYTHONPATH, Databricks' library folders) and is still
    installed there, with its metadata next to it. The user's editable installs keep their code in
    the project folder, away from their metadata, so they stay user code.
    """
    names: set[str] = set()
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".dist-info") and e.is_dir()]
    except OSError:
        return frozenset()
    for entry in entries:
        try:
            with open(os.path.join(entry.path, "top_level.txt"), encoding="utf-8") as fh:
                names.update(line.strip() for line in fh if line.strip())
            continue
        except OSError:
            pass
        try:  # no top_level.txt (wheels built by newer tools): the first path parts in RECORD
            with open(os.path.join(entry.path, "RECORD"), encoding="utf-8") as fh:
                for line in fh:
                    first = line.split(",", 1)[0].split("/", 1)[0]
                    names.add(first[:-3] if first.endswith(".py") else first)
        except OSError:
            pass
    return frozenset(names)


def _is_installed(name: str, file: str) -> bool:
    """Whether module ``name`` (loaded from ``file``) sits in a folder where an installer put it."""
    path = os.path.realpath(file)
    package = os.path.basename(path) == "__init__.py"
    folder = os.path.dirname(os.path.dirname(path) if package else path)
    return name in _installed_in(folder)


def _user_modules() -> list[types.ModuleType]:
    """Loaded top-level modules of the user's own code: outside the interpreter's install folders,
    not in an archive, and not installed by pip into the folder they come from.

    >>> import json
    >>> json in _user_modules()
    False
    """
    found = []
    with _lock:
        install_dirs: tuple[str, ...] | None = None
        for name, mod in list(sys.modules.items()):
            if "." in name or mod is None:
                continue
            user = _module_is_user.get(name)
            if user is None:
                file = getattr(mod, "__file__", None)
                if not file or name in _NEVER_BY_VALUE:
                    user = False
                else:
                    install_dirs = install_dirs or _install_dirs()
                    user = _is_user_file(str(file), install_dirs) and not _is_installed(name, str(file))
                _module_is_user[name] = user
            if user:
                found.append(mod)
    return found


def loads(data: bytes) -> Any:
    """Unpickle a payload produced by one of sparkdist's own tasks."""
    return pickle.loads(data)


def dumps_checked(obj: Any, *, what: str) -> bytes:
    """Pickle ``obj`` or raise NotPicklableError naming what inside it could not be pickled."""
    try:
        return dumps(obj)
    except Exception as err:
        culprit = _find_culprit(obj)
        detail = f" ({culprit})" if culprit else ""
        raise NotPicklableError(
            f"{what} cannot be pickled to send to the workers{detail}: {type(err).__name__}: {err}. "
            "Create such objects inside the function instead of capturing them."
        ) from err


def dumps_explained(obj: Any, parts: list[tuple[Any, str]]) -> bytes:
    """Pickle ``obj`` once; if that fails, pickle its ``(value, description)`` parts one by one so
    the NotPicklableError names the part (and what inside it) that cannot travel."""
    try:
        return dumps(obj)
    except Exception:
        for value, what in parts:
            dumps_checked(value, what=what)
        raise


def _find_culprit(obj: Any, depth: int = 0) -> str | None:
    """Best effort: name the captured variable, global or argument that fails to pickle."""
    if depth > 3:
        return None
    candidates: list[tuple[str, Any]] = []
    if callable(obj) and hasattr(obj, "__code__"):
        code = obj.__code__
        cells = obj.__closure__ or ()
        candidates += [
            (f"captured variable '{n}'", c.cell_contents) for n, c in zip(code.co_freevars, cells, strict=False)
        ]
        glb = getattr(obj, "__globals__", {})
        candidates += [(f"global '{n}'", glb[n]) for n in code.co_names if n in glb]
    elif hasattr(obj, "func") and hasattr(obj, "args"):  # functools.partial
        candidates += [("partial function", obj.func)] + [(f"partial argument {i}", a) for i, a in enumerate(obj.args)]
    elif isinstance(obj, (tuple, list)):
        candidates += [(f"item {i}", v) for i, v in enumerate(obj)]
    elif isinstance(obj, dict):
        candidates += [(f"key '{k}'", v) for k, v in obj.items()]
    for label, value in candidates:
        try:
            dumps(value)
        except Exception:  # noqa: BLE001 - pickling can fail with any exception: that is what is looked for
            inner = _find_culprit(value, depth + 1)
            return f"{label} of type {type(value).__name__}" + (f", {inner}" if inner else "")
    return None


def split_parts(payload: bytes, part_bytes: int = PART_BYTES) -> list[bytes]:
    """Cut a payload into parts (at least one, possibly empty)."""
    if len(payload) <= part_bytes:
        return [payload]
    return [payload[i : i + part_bytes] for i in range(0, len(payload), part_bytes)]


def join_parts(parts: Iterator[bytes] | list[bytes]) -> bytes:
    """Inverse of :func:`split_parts`."""
    return b"".join(parts)


def cloudpickle_module() -> Any:
    """The cloudpickle that sparkdist pickles with (see :func:`sparkdist._compat.cloudpickle`)."""
    return _compat.cloudpickle()
