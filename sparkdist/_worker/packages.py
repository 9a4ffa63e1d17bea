"""Packages shipped with ``packages=``, on a worker: the archives Spark unpacked for the session go on
``sys.path`` before a task unpickles its work, after the installed libraries (so that a package the
executor has already is never shadowed); and what the driver needs to resolve wheels for this Python."""

from __future__ import annotations

import os
import sys
from typing import Any

#: Name of every packages archive (``sparkdist-packages-<content hash>.zip``) and of the folder Spark
#: unpacks it into.
PREFIX = "sparkdist-packages-"


def activate(root: str | None) -> list[str]:
    """Append the unpacked packages archives found in ``root`` (Spark's files folder for the task) or
    the working directory to ``sys.path``, once each; returns the folders now on the path."""
    import importlib

    found = []
    for folder in {root or os.getcwd(), os.getcwd()}:
        try:
            names = sorted(n for n in os.listdir(folder) if n.startswith(PREFIX))
        except OSError:  # no such folder here
            continue
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isdir(path) and path not in sys.path:
                sys.path.append(path)  # after site-packages: what the executor has wins
                found.append(path)
    if found:
        importlib.invalidate_caches()
    return [p for p in sys.path if os.path.basename(p).startswith(PREFIX)]


def shipped() -> list[str]:
    """``name version`` of the distributions in the packages archives on ``sys.path``."""
    names = []
    for folder in (p for p in sys.path if os.path.basename(p).startswith(PREFIX)):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".dist-info"):
                name, _, version = entry[: -len(".dist-info")].partition("-")
                names.append(f"{name} {version}")
    return sorted(set(names))


def target() -> dict[str, Any]:
    """This Python as pip needs it to pick wheels for it (version, implementation, ABIs, platform
    tags), and the distributions installed in it (not those shipped). Plain values only."""
    import platform
    import sysconfig
    from importlib import metadata

    try:
        from packaging import tags
    except ImportError:
        try:
            from pip._vendor.packaging import tags  # type: ignore[no-redef]
        except ImportError:
            tags = None  # type: ignore[assignment]
    if tags is not None:
        found = list(tags.sys_tags())
        platforms = list(dict.fromkeys(t.platform for t in found))
        abis = list(dict.fromkeys(t.abi for t in found))
    else:  # neither here: this platform's own tag, and manylinux by the C library's version
        platforms, abis = _platforms(sysconfig.get_platform()), [f"cp{sys.version_info[0]}{sys.version_info[1]}"]
        abis += ["abi3", "none"]
    installed: dict[str, str] = {}
    for dist in metadata.distributions():
        where = str(getattr(dist, "_path", ""))
        name = dist.metadata["Name"] if dist.metadata else None
        if name and PREFIX not in where:
            installed.setdefault(name.lower().replace("_", "-"), dist.version)
    return {
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "implementation": {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name),
        "abis": abis,
        "platforms": platforms,
        "machine": platform.machine(),
        "installed": installed,
    }


def _platforms(plat: str) -> list[str]:
    """pip platform tags for ``sysconfig.get_platform()`` where ``packaging`` is missing."""
    tag = plat.replace("-", "_").replace(".", "_")
    if not tag.startswith("linux_"):
        return [tag]
    arch = tag[len("linux_") :]
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
        minor = int(glibc.split()[1].split(".")[1])
    except (ValueError, IndexError, OSError):
        return [tag]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    found = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
    found += [f"{legacy[m]}_{arch}" for m in sorted(legacy, reverse=True) if m <= minor]
    return [*found, tag]
