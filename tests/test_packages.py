"""packages=: wheels resolved on the driver for the executors' Python and platform, one archive per
requirement set, shipped once; the local contexts check that this Python has them.

The packages: ``tabulate`` (pure Python) and ``msgpack`` (compiled), neither in the dev venv nor in the
executors' venv of the server modes (tests/_cluster.py: numpy, pandas, pyarrow only)."""

from __future__ import annotations

import importlib.util

import pytest

import sparkdist as sd
from sparkdist import _compat
from sparkdist._worker import packages as worker_packages
from sparkdist.spark import packages

PURE, COMPILED = "tabulate", "msgpack"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """A cache of this test run's own, so that "built once" is about this run."""
    monkeypatch.setenv("SPARKDIST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "sparkdist-cache"))


@pytest.fixture
def counted(monkeypatch):
    """How many times pip was run and archives were shipped."""
    calls = {"download": 0, "ship": 0}
    download, ship = packages._download, _compat.ship_archive

    def counting_download(*args, **kwargs):
        calls["download"] += 1
        return download(*args, **kwargs)

    def counting_ship(*args, **kwargs):
        calls["ship"] += 1
        return ship(*args, **kwargs)

    monkeypatch.setattr(packages, "_download", counting_download)
    monkeypatch.setattr(_compat, "ship_archive", counting_ship)
    return calls


def this_python(**changes) -> packages.Target:
    target = packages.target_from([worker_packages.target()])
    fields = {**target.__dict__, **changes}
    return packages.Target(**fields)


def uses_tabulate(n):
    import tabulate

    return tabulate.tabulate([[n]], tablefmt="plain").strip()


def uses_msgpack(n):
    import msgpack

    return msgpack.unpackb(msgpack.packb([n, n + 1]))


# -- in this Python: the local contexts, and resolving ---------------------------------------------------


def test_local_contexts_check_that_this_python_has_the_packages():
    for ctx in (sd.LocalComputeContext(), sd.LocalParallelComputeContext(1)):
        assert sd.exec_job(len, elem_args=[[1, 2]], packages=["numpy>=1", "pandas"], compute_context=ctx) == [2]
        ran = []
        with pytest.raises(ModuleNotFoundError, match=r"msgpack \(not installed\), numpy>=999 \(found ") as err:
            sd.distribute_job(ran.append, [1], packages=[COMPILED, "numpy>=999"], compute_context=ctx)
        assert isinstance(err.value, sd.MissingPackageError) and ran == []
    with pytest.raises(sd.InvalidArgumentError, match="'not a requirement!' is not a requirement pip understands"):
        sd.exec_job(len, elem_args=[[1]], packages=["not a requirement!"], compute_context=sd.LocalComputeContext())
    with pytest.raises(sd.ArgumentTypeError, match="packages must be a list of requirement strings"):
        sd.exec_by(
            lambda keys, g: len(g), _frame(), ["k"], packages="tabulate", compute_context=sd.LocalComputeContext()
        )


def test_one_archive_per_requirement_set_of_what_the_executors_lack(counted):
    target = this_python(installed=(("tabulate", "0.8.0"),))  # an older tabulate there: pinned, not shipped
    with pytest.raises(sd.PackageError, match="conflict with what the executors"):
        packages.archive_for((f"{PURE}>=0.9",), None, target)
    target = this_python()
    first = packages.archive_for((COMPILED, PURE), None, target)
    again = packages.archive_for((COMPILED, PURE), None, target)
    assert first == again and counted["download"] == 2  # the failed set, then this one: once
    assert first.name.startswith("sparkdist-packages-") and oct(first.stat().st_mode & 0o777) == "0o600"
    assert oct(first.parent.stat().st_mode & 0o777) == "0o700"
    import zipfile

    names = zipfile.ZipFile(first).namelist()
    assert "tabulate/__init__.py" in names and any(n.startswith("msgpack/") and n.endswith(".so") for n in names)
    have = this_python(
        installed=(("msgpack", _version_in(names, "msgpack")), ("tabulate", _version_in(names, "tabulate")))
    )
    assert packages.archive_for((COMPILED, PURE), None, have) is None  # the executors have both: nothing to ship


def _version_in(names, dist):
    (info,) = {n.split("/")[0] for n in names if n.startswith(f"{dist}-") and ".dist-info/" in n}
    return info[len(dist) + 1 : -len(".dist-info")]


def test_no_wheel_for_the_executors_platform_is_named():
    target = this_python(platforms=("plan9_amd64",))
    with pytest.raises(
        sd.PackageError, match=r"no wheel of msgpack for the executors' Python and platform \(cp3\d+ plan9_amd64\)"
    ) as err:
        packages.archive_for((COMPILED,), None, target)
    assert err.value.requirement == COMPILED and err.value.platform.endswith("plan9_amd64")


def test_a_conflict_with_what_the_executors_import_is_named():
    target = this_python(installed=(("six", "1.4.1"),))
    with pytest.raises(sd.PackageError, match=r"conflict with what the executors .* already import .*six") as err:
        packages.archive_for(("python-dateutil==2.9.0.post0",), None, target)
    assert "python-dateutil" in err.value.requirement


def test_no_pip_on_the_driver_is_an_import_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pip" else real(name, *a))
    with pytest.raises(ImportError, match="packages= needs pip on the driver"):
        packages.archive_for((PURE,), None, this_python())


# -- on executors that lack them -------------------------------------------------------------------------


def test_without_packages_the_executors_name_the_missing_module(spark_ctx):
    """Runs first in its session: no archive has been shipped to it yet."""
    for func, module in ((uses_tabulate, PURE), (uses_msgpack, COMPILED)):
        with pytest.raises(sd.JobError, match=f"(?s)ModuleNotFoundError.*{module}.*executor_info.*packages="):
            sd.exec_job(func, elem_args=[1], continue_on_failure=False, compute_context=spark_ctx)


def test_packages_are_shipped_once_per_requirement_set(spark_ctx, counted):
    for _ in range(2):
        assert sd.exec_job(uses_tabulate, elem_args=[1, 2], packages=[PURE, COMPILED], compute_context=spark_ctx) == [
            "1",
            "2",
        ]
        got = sd.distribute_job(
            lambda split: uses_msgpack(len(split)), _frame(), packages=[COMPILED, PURE], compute_context=spark_ctx
        )
        assert got and all(isinstance(r, list) and r[1] == r[0] + 1 for r in got)
    assert counted == {"download": 1, "ship": 1}
    info = sd.executor_info(compute_context=spark_ctx)
    assert all(PURE in p and COMPILED in p for p in info["packages"])


def test_a_context_with_packages_ships_them_for_every_job(spark, counted):
    ctx = sd.SparkComputeContext(spark, packages=[COMPILED])
    groups = sd.exec_by(lambda keys, g: uses_msgpack(len(g)), _frame(), ["k"], compute_context=ctx)
    assert [r.result for r in groups] == [[2, 3], [2, 3]]
    assert counted["download"] == 1


def _frame():
    import pandas as pd

    return pd.DataFrame({"k": [1, 1, 2, 2], "x": [1.0, 2.0, 3.0, 4.0]})


def test_a_requirements_file_is_resolved_like_packages(tmp_path):
    listed = tmp_path / "requirements.txt"
    listed.write_text(f"# what the job needs\n{PURE}\n")
    archive = packages.archive_for((), str(listed), this_python())
    import zipfile

    assert archive is not None and "tabulate/__init__.py" in zipfile.ZipFile(archive).namelist()
    with pytest.raises(sd.InvalidArgumentError, match="requirements must be a pip requirements file"):
        sd.SparkComputeContext(master="local[1]", requirements=str(tmp_path / "missing.txt"))
