"""sparkdist as users install it: its sdist, and venvs without pyspark and with the Spark Connect thin client.

The venvs live under ``.venvs/`` (gitignored), one per requirement set, and are kept between runs:
a later run only reinstalls sparkdist itself (a wheel built from this checkout's sdist). They are
filled by the test process's own pip (``pip --python``), so pip's cache and configuration serve them.
The full pyspark is the main dev venv, which the rest of the suite tests.
"""

from __future__ import annotations

import email.parser
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"
SMOKE = ROOT / "tests" / "smoke.py"


def _run(cmd: list[str], *, timeout: float = 900, **kwargs: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return out


def _pip_install(python: Path, *args: str) -> None:
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *args])


def cached_venv(name: str, wheel: Path, extra: list[str]) -> Path:
    """The python of venv ``.venvs/<name>-<key>``: sparkdist's dependencies plus ``extra``, built once per
    Python, pyproject.toml and ``extra`` (older venvs of that name are removed); sparkdist itself is
    reinstalled from ``wheel`` on every call."""
    key = hashlib.sha256("\n".join([sys.version, (ROOT / "pyproject.toml").read_text(), *extra]).encode()).hexdigest()[
        :12
    ]
    path = VENVS / f"{name}-{key}"
    python = path / "bin" / "python"
    if not (path / ".complete").exists():
        for old in VENVS.glob(f"{name}-*"):
            shutil.rmtree(old, ignore_errors=True)
        _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
        _pip_install(python, str(wheel), *extra)
        (path / ".complete").write_text("\n".join(extra) + "\n")
    _pip_install(python, "--no-deps", "--force-reinstall", str(wheel))
    return python


def _smoke_env() -> dict[str, str]:
    """The environment for a run in another venv or tree: nothing of this process's paths and settings."""
    drop = ("PYTHONPATH", "PYSPARK_PYTHON", "VIRTUAL_ENV", "SPARK_CONF_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This checkout built as users get it: ``python -m build`` makes the sdist, then the wheel from it."""
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)  # cwd: no ./build to shadow it
    print(f"\nbuilt sdist and wheel in {time.monotonic() - started:.1f}s")
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    yield out


def _one(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


@pytest.mark.slow
def test_sdist_has_what_its_tests_need_and_they_pass_from_it(dist, tmp_path):
    sdist = _one(dist, "sparkdist-*.tar.gz")
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp_path, filter="data")
        else:  # pragma: no cover - Pythons before 3.10.12 / 3.11.4
            tar.extractall(tmp_path)  # our own freshly built archive
    src = _one(tmp_path, "sparkdist-*")
    for needed in (
        "LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "sparkdist/py.typed", "tests/conftest.py",
        "tests/smoke.py", "conf/spark-defaults.conf", "conf/log4j2.properties", "examples/demo.py",
        "notebooks/quickstart.ipynb",
    ):  # fmt: skip
        assert (src / needed).is_file(), f"{needed} is missing from {sdist.name}"
    assert "Apache License" in (src / "LICENSE").read_text()
    assert not list(src.rglob("__pycache__")) and not (src / ".venv").exists()

    env = {**_smoke_env(), "PYTHONPATH": str(src)}
    where = _run([sys.executable, "-c", "import sparkdist; print(sparkdist.__file__)"], cwd=src, env=env)
    assert where.stdout.strip() == str(src / "sparkdist" / "__init__.py")
    # a part of the no-JVM suite from the unpacked tree: the API in both local contexts, and doctests
    tests = ["tests/test_distribute.py", "tests/test_execute.py", "tests/test_sources.py", "sparkdist/sources"]
    out = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-m", "not slow", *tests], cwd=src, env=env)
    assert " passed" in out.stdout and " failed" not in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
def test_wheel_carries_the_license_and_the_type_marker(dist):
    with zipfile.ZipFile(_one(dist, "sparkdist-*.whl")) as zf:
        names = zf.namelist()
        (meta,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta).decode()
    assert "sparkdist/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "License-Expression: Apache-2.0" in metadata
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert required and not [line for line in required if "pyspark" in line]  # pyspark only in the extras
    assert "Provides-Extra: spark" in metadata and "Provides-Extra: connect" in metadata


def lowest_requirements(wheel: Path) -> list[str]:
    """``name==lowest`` for each of the wheel's unconditional requirements (``>=`` bounds)."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        (meta,) = (n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        requires = email.parser.Parser().parsestr(zf.read(meta).decode()).get_all("Requires-Dist") or []
    pins = []
    for req in map(Requirement, requires):
        if req.marker is None:
            (lowest,) = (spec.version for spec in req.specifier if spec.operator == ">=")
            pins.append(f"{req.name}=={lowest}")
    return pins


@pytest.mark.slow
def test_without_pyspark_the_local_contexts_run_and_spark_says_what_to_install(dist, tmp_path):
    """A bare ``pip install sparkdist``, with the lowest versions its requirements allow on Pythons up to
    3.10 (pyarrow 8 and numpy 1.23.0 have no wheels for newer ones, which get the newest; make
    test-runtime's floors lane runs the floors on 3.10)."""
    wheel = _one(dist, "sparkdist-*.whl")
    pins = lowest_requirements(wheel) if sys.version_info < (3, 11) else []
    python = cached_venv("no-pyspark", wheel, pins)
    check = "import importlib.util as u; assert u.find_spec('pyspark') is None, 'pyspark is installed'"
    _run([str(python), "-c", check])
    out = _run([str(python), str(SMOKE), "local"], cwd=tmp_path, env=_smoke_env(), timeout=600)
    versions = out.stdout.splitlines()[0]
    assert str(python.parent.parent) in versions  # the venv's installed copy ran
    for pin in pins:
        name, version = pin.split("==")
        if name != "tqdm":  # smoke.py prints the versions of the others
            assert re.search(rf"\b{name}={re.escape(version)}(\.0)*\b", versions), (pin, versions)
    assert "SparkComputeContext without pyspark: ComputeContextError" in out.stdout
    assert out.stdout.rstrip().endswith("SMOKE OK"), out.stdout


@pytest.mark.slow
def test_thin_client_runs_jobs_on_a_connect_server(connect_url, dist, tmp_path):
    """pyspark-client (Spark Connect only, no JVM, no classic pyspark) never newer than the server's pyspark."""
    import pyspark

    python = cached_venv("thin-client", _one(dist, "sparkdist-*.whl"), [f"pyspark-client>=4.0,<={pyspark.__version__}"])
    check = (
        "import importlib.metadata as m, pyspark.util as u\n"
        "assert u.is_remote_only(), 'classic Spark is present'\n"
        "try:\n    m.distribution('pyspark')\nexcept m.PackageNotFoundError:\n    pass\n"
        "else:\n    raise AssertionError('the classic pyspark distribution is installed')\n"
    )
    _run([str(python), "-c", check])
    out = _run([str(python), str(SMOKE), "connect", "--remote", connect_url], cwd=tmp_path, env=_smoke_env())
    assert str(python.parent.parent) in out.stdout.splitlines()[0]
    assert "SparkComputeContext(<Spark Connect session>)" in out.stdout
    assert out.stdout.rstrip().endswith("SMOKE OK"), out.stdout


def test_the_floor_lanes_test_the_declared_floors():
    """``make test-floors`` installs exactly the lowest pyspark that each extra in pyproject.toml allows."""
    from packaging.version import Version

    pyproject, makefile = (ROOT / "pyproject.toml").read_text(), (ROOT / "Makefile").read_text()
    for extra, requirement, variable in (
        ("spark", "pyspark", "SPARK_FLOOR"),
        ("connect", "pyspark[connect]", "CONNECT_FLOOR"),
    ):
        declared = re.search(rf'^{extra} = \["{re.escape(requirement)}>=([\d.]+)"\]$', pyproject, re.M)
        tested = re.search(rf"^{variable} +:= ([\d.]+)$", makefile, re.M)
        assert declared and tested, (extra, variable)
        assert Version(declared.group(1)) == Version(tested.group(1)), (extra, declared.group(1), tested.group(1))
