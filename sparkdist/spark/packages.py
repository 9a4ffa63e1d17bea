"""Packages for the executors (``packages=``, RevoScaleR's ``packagesToLoad``): wheels resolved on the
driver with pip for the executors' Python and platform (as the ``executor_info`` probe reads them), with
what the executors already have pinned as constraints; one archive per requirement set, of the wheels
the executors lack, named by its content and cached in a folder private to the user; shipped to a
session once (``_compat.ship_archive``). Workers append it to ``sys.path`` before they unpickle a task
(``sparkdist._worker.packages``)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sparkdist._worker.packages import PREFIX
from sparkdist.errors import DependencyError, PackageError

__all__ = ["Target", "archive_for", "cache_dir", "target_from"]

#: Never shipped: Spark provides them on every executor, and pip has no wheel of pyspark.
PROVIDED = frozenset({"pyspark", "py4j", "pip", "setuptools", "wheel"})
_lock = threading.Lock()


@dataclass(frozen=True)
class Target:
    """The executors' Python as pip needs it, and the distributions installed there (name, version)."""

    python: str
    implementation: str
    abis: tuple[str, ...]
    platforms: tuple[str, ...]
    installed: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """``"cp311 manylinux_2_35_x86_64"``: the executors' Python and most specific platform tag."""
        best = [p for p in self.platforms if p.startswith(("manylinux_", "musllinux_", "macosx_", "win"))]
        return f"{self.implementation}{self.python.replace('.', '')} {(best or [*self.platforms, '?'])[0]}"


def target_from(rows: list[dict[str, Any]]) -> Target:
    """One Target from every executor's ``_worker.packages.target()`` row: their common platform tags and
    the distributions they all have at the same version; executors on different Pythons are an error."""
    answered = [r for r in rows if "error" not in r]
    if not answered:
        detail = rows[0]["error"] if rows else "no executor answered"
        raise PackageError(f"could not ask the executors which Python they run, to resolve packages= for it: {detail}")
    pythons = sorted({f"{r['implementation']}{r['python']} {r['machine']}" for r in answered})
    if len(pythons) > 1:
        raise PackageError(
            f"the executors run different Pythons ({', '.join(pythons)}): one archive cannot fit them all"
        )
    platforms = [p for p in answered[0]["platforms"] if all(p in r["platforms"] for r in answered)]
    installed = {k: v for k, v in answered[0]["installed"].items() if all(r["installed"].get(k) == v for r in answered)}
    first = answered[0]
    return Target(
        first["python"],
        first["implementation"],
        tuple(first["abis"]),
        tuple(platforms),
        tuple(sorted(installed.items())),
    )


def cache_dir() -> Path:
    """``$SPARKDIST_CACHE_DIR``, else ``$XDG_CACHE_HOME/sparkdist`` (``~/.cache/sparkdist``), with
    ``packages/`` in it; made private to the user (0700)."""
    base = os.environ.get("SPARKDIST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "sparkdist"
    )
    folder = Path(base) / "packages"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def archive_for(wanted: tuple[str, ...], requirements: str | None, target: Target) -> Path | None:
    """The archive of the wheels that ``wanted`` (and the requirements file) need on ``target`` and it
    lacks: built once per requirement set and target (an index in the cache remembers it), named by its
    content. None when the executors have everything already."""
    listed = Path(requirements).read_text(encoding="utf-8") if requirements else ""
    key = hashlib.sha256(json.dumps([wanted, listed, asdict(target)], sort_keys=True).encode()).hexdigest()[:20]
    with _lock:
        folder = cache_dir()
        index = folder / f"set-{key}.json"
        if index.exists():
            name = json.loads(index.read_text())["archive"]
            if name is None or (folder / name).exists():
                return None if name is None else folder / name
        work = Path(tempfile.mkdtemp(prefix="resolve-", dir=folder))
        try:
            wheels = _download(wanted, requirements, target, work)
            have = {(_normal(n), v) for n, v in target.installed}
            needed = [w for w in wheels if (_normal(w.name.split("-")[0]), w.name.split("-")[1]) not in have]
            name = _build(needed, folder) if needed else None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        index.write_text(json.dumps({"archive": name, "wanted": wanted, "target": target.describe()}))
        return None if name is None else folder / name


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _download(wanted: tuple[str, ...], requirements: str | None, target: Target, work: Path) -> list[Path]:
    """pip download of binary wheels for ``target`` into ``work/wheels``, what the executors have pinned."""
    if importlib.util.find_spec("pip") is None:
        raise DependencyError(
            "packages= needs pip on the driver to download wheels for the executors: python -m ensurepip --upgrade"
        )
    pins = [f"{n}=={v}" for n, v in target.installed if _normal(n) not in PROVIDED and "+" not in v]
    (work / "constraints.txt").write_text("\n".join(pins) + "\n")
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--progress-bar=off"]
    cmd += ["--only-binary=:all:", "--python-version", target.python, "--implementation", target.implementation]
    cmd += [f"--abi={a}" for a in target.abis] + [f"--platform={p}" for p in target.platforms]
    cmd += ["-d", str(work / "wheels"), "-c", str(work / "constraints.txt"), *wanted]
    cmd += ["-r", requirements] if requirements else []
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800, check=False)
    if done.returncode != 0:
        raise _failure(done.stderr + done.stdout, wanted, target)
    return sorted((work / "wheels").glob("*.whl"))


def _failure(text: str, wanted: tuple[str, ...], target: Target) -> PackageError:
    """pip's failure as a PackageError naming the package and the executors' platform."""
    where = target.describe()
    conflict = re.search(r"The conflict is caused by:\n(.*?)(?:\n\n|\Z)", text, re.S)
    if conflict is not None or "ResolutionImpossible" in text:
        found = conflict.group(1).splitlines() if conflict is not None else re.findall(r"Cannot install .*", text)
        lines = "; ".join(line.strip() for line in found if line.strip())
        return PackageError(
            f"packages={list(wanted)} conflict with what the executors ({where}) already import (pinned to their "
            f"installed versions): {lines}. Ask for versions that work with those, or install the packages there.",
            requirement=", ".join(wanted),
            platform=where,
        )
    missing = re.search(r"No matching distribution found for (\S+)", text)
    if missing is not None:
        name = missing.group(1)
        provided = (
            " (Spark provides it on the executors: leave it out)"
            if _normal(re.split(r"[<>=!~;\[ ]", name)[0]) in PROVIDED
            else ""
        )
        return PackageError(
            f"no wheel of {name} for the executors' Python and platform ({where}){provided}: the package may have "
            "no binary wheel for it (a source distribution only), no version that fits, or no such name",
            requirement=name,
            platform=where,
        )
    tail = " ".join([line for line in text.strip().splitlines() if not line.startswith("WARNING")][-4:])
    return PackageError(
        f"pip could not download packages={list(wanted)} for the executors ({where}): {tail}", platform=where
    )


def _build(wheels: list[Path], folder: Path) -> str:
    """One zip of the wheels' contents as site-packages holds them (``.data/purelib`` and ``platlib``
    at the top, scripts and headers left out), named by a hash of the wheels: the same content is the
    same archive, shipped once."""
    digest = hashlib.sha256()
    for wheel in wheels:
        digest.update(wheel.name.encode() + hashlib.sha256(wheel.read_bytes()).digest())
    name = f"{PREFIX}{digest.hexdigest()[:16]}.zip"
    final = folder / name
    if final.exists():
        return name
    partial = folder / f".{name}.{os.getpid()}"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as whl:
                for item in whl.infolist():
                    path = _site_path(item.filename)
                    if path is not None and not item.is_dir():
                        info = zipfile.ZipInfo(path, item.date_time)
                        info.external_attr = item.external_attr
                        out.writestr(info, whl.read(item), zipfile.ZIP_DEFLATED)
    os.chmod(partial, 0o600)
    os.replace(partial, final)
    return name


def _site_path(name: str) -> str | None:
    """Where a wheel's member goes in site-packages; None for what an archive does not carry."""
    head, _, rest = name.partition("/")
    if not head.endswith(".data"):
        return name
    kind, _, inner = rest.partition("/")
    return inner if kind in ("purelib", "platlib") and inner else None


class Shipper:
    """A Spark context's packages: its own (``packages=``, ``requirements=``) with those of a job, one
    archive per requirement set (resolved once), each shipped once per session."""

    def __init__(self, packages: tuple[str, ...], requirements: str | None) -> None:
        self.packages, self.requirements = packages, requirements
        self._archives: dict[tuple[str, ...], Path | None] = {}
        self._shipped: set[tuple[str, str]] = set()
        self._target: Target | None = None
        self._lock = threading.Lock()
        self._busy = threading.local()  # the probe's own job must not ship packages

    def __bool__(self) -> bool:
        return bool(self.packages or self.requirements)

    def ensure(self, session: Any, session_key: str, extra: tuple[str, ...], probe: Any) -> None:
        """Ship ``extra`` with the context's own packages to ``session`` (``probe()``: the executors'
        ``_worker.packages.target`` rows, asked once)."""
        wanted = tuple(sorted(set(self.packages) | set(extra)))
        if not (wanted or self.requirements) or getattr(self._busy, "on", False):
            return
        from sparkdist import _compat

        with self._lock:
            if self._target is None:
                self._busy.on = True
                try:
                    self._target = target_from(probe())
                finally:
                    self._busy.on = False
            if wanted not in self._archives:
                self._archives[wanted] = archive_for(wanted, self.requirements, self._target)
            path = self._archives[wanted]
            if path is not None and (session_key, path.name) not in self._shipped:
                _compat.ship_archive(session, str(path))
                self._shipped.add((session_key, path.name))
