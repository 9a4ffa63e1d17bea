"""Real Spark servers for the ``standalone`` and ``connect-server`` test modes.

A standalone master and its workers are started with pyspark's own ``bin/spark-class``, a Spark
Connect server with ``bin/spark-submit``; everything binds to 127.0.0.1 on ports the JVMs pick
themselves (port 0, read back from their logs), and lives in a private temporary directory.

Executors run a Python of their own (a cached venv with this interpreter's numpy, pandas and
pyarrow, but neither pyspark nor sparkdist), as on a real cluster: pyspark comes from
``$SPARK_HOME/python/lib/*.zip``, which Spark puts on the executors' ``PYTHONPATH`` itself.

Each server is started in its own session (process group = its pid) and carries a marker in its
environment that its executors and their Python workers inherit. :meth:`Cluster.stop` ends every
group it started, by that id, then ends any straggler carrying the marker (a pyspark daemon moves to
a process group of its own). An ``atexit`` hook and a SIGTERM/SIGHUP handler do the same when the run
is interrupted; children also get SIGTERM if the test process dies (``setpriv --pdeathsig``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXECUTOR_VENV = ROOT / ".venv-executors"
#: what the executors' Python gets, pinned to the versions this interpreter has
EXECUTOR_PACKAGES = ("numpy", "pandas", "pyarrow")
MARKER = "SPARKDIST_TEST_CLUSTER"
#: class names of the JVMs a cluster runs; none of ours may outlive :meth:`Cluster.stop`
JVM_CLASSES = (
    "org.apache.spark.deploy.master.Master",
    "org.apache.spark.deploy.worker.Worker",
    "org.apache.spark.executor.CoarseGrainedExecutorBackend",
    "org.apache.spark.sql.connect.service.SparkConnectServer",
)

_DAEMON_LOG4J = """\
# Written by tests/_cluster.py: INFO from the deploy and Connect service classes (readiness lines).
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex
logger.deploy.name = org.apache.spark.deploy
logger.deploy.level = info
logger.connect.name = org.apache.spark.sql.connect.service
logger.connect.level = info
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
"""

# Extra settings for the daemons, after a copy of conf/spark-defaults.conf.
_DAEMON_DEFAULTS = """
# Added by tests/_cluster.py: no REST submission server (it would take the fixed port 6066).
spark.master.rest.enabled                  false
"""


_LIGHT_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class ClusterError(RuntimeError):
    """A server did not start or stop as it should; the message carries its log's tail."""


# -- the executors' Python -------------------------------------------------------------------------


def spark_home() -> Path:
    """The pip-installed pyspark directory: it has bin/, jars/ and python/lib/*.zip."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def executor_packages() -> dict[str, str]:
    """``name -> version`` of :data:`EXECUTOR_PACKAGES` in this interpreter."""
    return {name: metadata.version(name) for name in EXECUTOR_PACKAGES}


def executor_python(venv: Path = EXECUTOR_VENV, log: Callable[[str], None] = print) -> Path:
    """The executors' interpreter: ``venv``, built once (and again when this interpreter's version or
    the packages' versions change) with exactly this interpreter's numpy, pandas and pyarrow.

    pip's cache makes a rebuild cheap; a lock file keeps two test processes from building at once.
    """
    wanted = {
        "python": list(sys.version_info[:3]),
        "base": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "packages": executor_packages(),
    }
    python = venv / "bin" / "python"
    stamp = venv / ".sparkdist-stamp.json"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
                return python
        except ValueError:
            pass
        started = time.monotonic()
        log(f"building the executors' Python in {venv} ({wanted['packages']}) ...")
        shutil.rmtree(venv, ignore_errors=True)
        pins = [f"{name}=={version}" for name, version in wanted["packages"].items()]
        steps = [
            [wanted["base"], "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--prefer-binary", "-q", *pins],
        ]
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise ClusterError(f"{' '.join(cmd)} failed:\n{_tail_text(done.stdout + done.stderr)}")
        for absent in ("sparkdist", "pyspark"):
            check = subprocess.run(
                [str(python), "-c", f"import importlib.util as u, sys; sys.exit(u.find_spec({absent!r}) is not None)"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                env=_clean_env(),
                cwd=venv,
            )
            if check.returncode != 0:
                raise ClusterError(f"the executors' Python {python} can import {absent}; it must not")
        stamp.write_text(json.dumps(wanted))
        log(f"built the executors' Python in {time.monotonic() - started:.0f} s")
        return python


# -- processes -------------------------------------------------------------------------------------


def _tail_text(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that would point a child at the test venv's
    Python or packages (the executors must not find sparkdist), nor at other Spark settings."""
    venv_bin = os.path.join(sys.prefix, "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYSPARK_", "SPARK_", "PYTHON", "_PYTHON", "VIRTUAL_ENV", "CONDA_", "JAVA_TOOL"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    return env


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def marked_processes(marker: str) -> dict[int, str]:
    """``pid -> command line`` of live processes whose environment has ``SPARKDIST_TEST_CLUSTER=marker``:
    everything a cluster started, directly or through Spark (executors, Python workers)."""
    needle = f"{MARKER}={marker}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle not in Path("/proc", entry, "environ").read_bytes().split(b"\0"):
                continue
            state = Path("/proc", entry, "stat").read_text()
            if state[state.rindex(")") + 2] == "Z":
                continue
            cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry)] = cmdline.strip()
    return found


def short_cmdline(cmdline: str) -> str:
    """A JVM command line without its class path (for messages)."""
    return re.sub(r"(-cp|-classpath) \S+", r"\1 ...", cmdline)


@dataclass
class ServerProcess:
    """One server the harness started: its own session, so its process group id is its pid."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        """Whether the process has ended (without reaping it: its pid keeps naming our group)."""
        if self.popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def tail(self, lines: int = 40) -> str:
        try:
            return _tail_text(self.log.read_text(errors="replace"), lines)
        except OSError as err:
            return f"(no log: {err})"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group (the JVM's shutdown hooks end its executors), SIGKILL whatever is
        left after ``timeout``, then reap the process."""
        if self.popen.returncode is None:
            # the pid is not reaped yet, so it still names our group and nobody else's
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, sig)
                deadline = time.monotonic() + wait
                while _group_members(self.pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not _group_members(self.pid):
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


@dataclass(eq=False)
class Worker:
    """A standalone worker: ``address`` is its ``host:port`` as the master knows it."""

    process: ServerProcess
    cores: int
    memory: str
    work_dir: Path
    address: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(eq=False)
class Cluster:
    """A standalone master with workers, and optionally a Spark Connect server using them."""

    executor_python: Path
    spark_home: Path = field(default_factory=spark_home)
    spark_conf_dir: Path = ROOT / "conf"
    master_url: str = ""
    master_web_url: str = ""
    connect_url: str | None = None
    workers: list[Worker] = field(default_factory=list)
    connect_server: ServerProcess | None = None
    master: ServerProcess | None = None
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: what the probe job saw on the executors before the first test (tests/conftest.py)
    executor_reports: list[dict[str, Any]] = field(default_factory=list)
    base_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sparkdist-cluster-")))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self.conf_dir = self.base_dir / "conf"
        self.conf_dir.mkdir()
        defaults = (self.spark_conf_dir / "spark-defaults.conf").read_text()
        (self.conf_dir / "spark-defaults.conf").write_text(defaults + _DAEMON_DEFAULTS)
        (self.conf_dir / "log4j2.properties").write_text(_DAEMON_LOG4J)
        _LIVE.add(self)
        _install_handlers()

    # -- starting ----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The servers' environment (their executors inherit it)."""
        env = _clean_env()
        env.update(
            SPARK_HOME=str(self.spark_home),
            SPARK_CONF_DIR=str(self.conf_dir),
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_LOCAL_DIRS=str(self.base_dir / "local"),
            SPARK_DAEMON_MEMORY="512m",
            # master, workers and spark-class's launcher do little work: a quick JIT and one GC thread
            # halve their start-up CPU on a 2-core machine (executors and the Connect server keep the defaults)
            SPARK_DAEMON_JAVA_OPTS=_LIGHT_JVM,
            SPARK_LAUNCHER_OPTS=_LIGHT_JVM,
            # What Spark 4.3 honours (tried): a classic Python driver's own PYSPARK_PYTHON, and a Connect
            # server's PYSPARK_PYTHON; a worker's is not consulted. Set everywhere, as spark-env.sh would.
            PYSPARK_PYTHON=str(self.executor_python),
            PYSPARK_DRIVER_PYTHON=str(self.executor_python),
        )
        env[MARKER] = self.marker
        return env

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> ServerProcess:
        with self._lock:
            self._count += 1
            log = self.base_dir / f"{self._count:02d}-{name}.log"
        # SIGTERM to the server should this process die without cleaning up (e.g. SIGKILL); the signal
        # follows the thread that starts the server, so start servers from the main thread
        launcher = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                launcher + cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env or self.env(),
                cwd=self.base_dir,
                start_new_session=True,  # its own process group, out of reach of the terminal's Ctrl-C
            )
        return ServerProcess(name, popen, log)

    def _await(self, proc: ServerProcess, pattern: str, what: str, timeout: float) -> re.Match[str]:
        """Wait until ``proc``'s log matches ``pattern``; a clear error with the log's tail otherwise."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = proc.log.read_text(errors="replace") if proc.log.exists() else ""
            match = regex.search(text)
            if match:
                return match
            if proc.exited():
                raise ClusterError(f"{proc.name} (pid {proc.pid}) exited before {what}; {proc.log}:\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{proc.name} (pid {proc.pid}) did not {what} in {timeout:.0f} s; {proc.log}:\n{proc.tail()}"
                )
            time.sleep(0.1)

    def start(
        self,
        workers: int = 2,
        cores: int = 1,
        memory: str = "1g",
        connect: dict[str, str] | None = None,
        timeout: float = 90.0,
    ) -> Cluster:
        """Start the master, then ``workers`` workers (and, with ``connect``, a Spark Connect server with
        those extra settings) side by side; return once every one of them is ready."""
        try:
            cmd = [str(self.spark_home / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master"]
            self.master = self._spawn("master", [*cmd, "--host", "127.0.0.1", "--port", "0", "--webui-port", "0"])
            self.master_url = self._await(self.master, r"Starting Spark master at (spark://\S+)", "start", timeout)[1]
            pending = [self._spawn_worker(cores, memory) for _ in range(workers)]
            if connect is not None:
                self._spawn_connect_server(connect)
            self.master_web_url = self._await(self.master, r"started at (http://\S+)", "start its web UI", timeout)[1]
            self._await(self.master, r"elected leader", "become the leader", timeout)
            for worker in pending:
                self._await_worker(worker, timeout)
            if connect is not None:
                self._await_connect_server(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn_worker(self, cores: int, memory: str) -> Worker:
        work_dir = Path(tempfile.mkdtemp(prefix="worker-", dir=self.base_dir))
        cmd = [
            str(self.spark_home / "bin" / "spark-class"),
            "org.apache.spark.deploy.worker.Worker",
            *("--host", "127.0.0.1", "--port", "0", "--webui-port", "0"),
            *("--cores", str(cores), "--memory", memory, "--work-dir", str(work_dir)),
            self.master_url,
        ]
        worker = Worker(self._spawn("worker", cmd), cores, memory, work_dir)
        with self._lock:
            self.workers.append(worker)
        return worker

    def _await_worker(self, worker: Worker, timeout: float) -> None:
        worker.address = self._await(worker.process, r"Starting Spark worker (\S+) with", "start", timeout)[1]
        self._await(worker.process, r"Successfully registered with master", "register with the master", timeout)

    def add_worker(self, cores: int = 1, memory: str = "1g", timeout: float = 90.0) -> Worker:
        """Start one more worker; return it once the master has registered it. Running applications
        get an executor on it soon after (see :meth:`wait_for_executors`)."""
        worker = self._spawn_worker(cores, memory)
        try:
            self._await_worker(worker, timeout)
        except BaseException:
            self.stop_worker(worker)
            raise
        return worker

    def stop_worker(self, worker: Worker) -> None:
        """Stop a worker (its executors end with it) and wait until the master has dropped it."""
        worker.process.stop()
        with self._lock:
            if worker in self.workers:
                self.workers.remove(worker)
        deadline = time.monotonic() + 30
        while worker.address in {f"{w['host']}:{w['port']}" for w in self.alive_workers()}:
            if time.monotonic() > deadline:
                raise ClusterError(f"the master still lists worker {worker.address} 30 s after it stopped")
            time.sleep(0.2)

    def start_connect_server(self, conf: dict[str, str] | None = None, timeout: float = 120.0) -> str:
        """Start a Spark Connect server whose executors run on this cluster's workers; return its
        ``sc://`` URL once its gRPC port accepts connections."""
        self._spawn_connect_server(conf or {})
        return self._await_connect_server(timeout)

    def _spawn_connect_server(self, conf: dict[str, str]) -> None:
        # the server's environment (PYSPARK_PYTHON, from env()) decides its executors' Python
        settings = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": "0",
            "spark.executor.memory": "768m",
            **conf,
        }
        cmd = [
            str(self.spark_home / "bin" / "spark-submit"),
            *("--class", "org.apache.spark.sql.connect.service.SparkConnectServer"),
            *("--name", "sparkdist-tests-connect-server", "--master", self.master_url),
        ]
        for key, value in settings.items():
            cmd += ["--conf", f"{key}={value}"]
        self.connect_server = self._spawn("connect-server", cmd)

    def _await_connect_server(self, timeout: float) -> str:
        server = self.connect_server
        assert server is not None
        pattern = r"Spark Connect server started at:? \S*?:(\d+)"
        port = int(self._await(server, pattern, "start its gRPC service", timeout)[1])
        deadline = time.monotonic() + timeout
        while not _accepts("127.0.0.1", port):
            if server.exited() or time.monotonic() > deadline:
                raise ClusterError(
                    f"the Connect server's port {port} does not accept connections; {server.log}:\n{server.tail()}"
                )
            time.sleep(0.1)
        self.connect_url = f"sc://127.0.0.1:{port}"
        return self.connect_url

    # -- looking at it -----------------------------------------------------------------------------

    def master_state(self) -> dict[str, Any]:
        """The master's JSON status page (workers, applications, cores in use)."""
        with urllib.request.urlopen(f"{self.master_web_url}/json/", timeout=10) as response:
            state: dict[str, Any] = json.loads(response.read())
        return state

    def alive_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.master_state()["workers"] if w.get("state") == "ALIVE"]

    def wait_for_executors(self, cores: int, timeout: float = 60.0, session: Any = None) -> None:
        """Wait until the running application holds ``cores`` cores (= executors of 1 core each) at the
        master. The driver sees a new executor some seconds after the master grants it; with a
        ``session`` (classic or Connect), also wait until tasks of that session run on that many
        executors."""
        deadline = time.monotonic() + timeout
        while True:
            apps = self.master_state()["activeapps"]
            if apps and sum(a.get("cores", 0) for a in apps) >= cores:
                break
            if time.monotonic() > deadline:
                raise ClusterError(f"no application got {cores} cores in {timeout:.0f} s: {apps}\n{self.log_tails()}")
            time.sleep(0.2)
        while session is not None:
            seen = {r["executor_id"] for r in probe_executors(session, partitions=4 * cores, pause=0.2)}
            if len(seen) >= cores:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"tasks ran on executors {sorted(seen)} only, not on {cores}, in {timeout:.0f} s")
            time.sleep(0.5)

    def processes(self) -> list[ServerProcess]:
        procs = [self.master, *(w.process for w in self.workers), self.connect_server]
        return [p for p in procs if p is not None]

    def log_tails(self, lines: int = 30) -> str:
        """The tail of every server's log, and of the executors' stderr files."""
        parts = [f"--- {p.name} (pid {p.pid}, {p.log}):\n{p.tail(lines)}" for p in self.processes()]
        for stderr in sorted(self.base_dir.glob("worker-*/*/*/stderr")):
            parts.append(f"--- executor {stderr}:\n{_tail_text(stderr.read_text(errors='replace'), lines)}")
        return "\n".join(parts)

    # -- stopping ----------------------------------------------------------------------------------

    def stop(self, keep_dir: bool = False) -> dict[int, str]:
        """Stop every server (Connect server, workers, master, in that order), then any process still
        carrying this cluster's marker. Returns ``pid -> command line`` of those stragglers (they have
        been SIGKILLed); the temporary directory is removed unless ``keep_dir``."""
        for proc in reversed(self.processes()):
            proc.stop()
        self.workers.clear()
        deadline = time.monotonic() + 10
        left = marked_processes(self.marker)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = marked_processes(self.marker)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _LIVE.discard(self)
        if not keep_dir and not os.environ.get("SPARKDIST_KEEP_CLUSTER"):
            shutil.rmtree(self.base_dir, ignore_errors=True)
        return left


def own_executor_pids() -> list[int]:
    """Executor JVMs of this test process: those under its own driver JVM (``local-cluster``) and those
    under a live cluster's workers, never another process's (others may run tests on this machine)."""
    import psutil

    roots = [os.getpid(), *(w.pid for cluster in list(_LIVE) for w in list(cluster.workers))]
    found = []
    for root in roots:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(root).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any("CoarseGrainedExecutorBackend" in part for part in child.cmdline()):
                        found.append(child.pid)
    return found


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


# -- interrupted runs ------------------------------------------------------------------------------

_LIVE: set[Cluster] = set()
_handlers_installed = False


def _stop_all() -> None:
    for cluster in list(_LIVE):
        with contextlib.suppress(Exception):
            cluster.stop()


def _on_signal(signum: int, frame: object) -> None:
    _stop_all()
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


_previous_handlers: dict[int, Any] = {}


def _install_handlers() -> None:
    """atexit always; SIGTERM/SIGHUP when called from the main thread (Ctrl-C is KeyboardInterrupt,
    after which pytest tears the session fixtures down, and atexit runs in any case)."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(signum)
            if previous is not signal.SIG_IGN:  # e.g. SIGHUP under nohup: leave it ignored
                _previous_handlers[signum] = previous
                signal.signal(signum, _on_signal)


# -- what the executors run ------------------------------------------------------------------------

# Compiled with exec() into a namespace whose module name is importable nowhere, so that pyspark's
# cloudpickle sends the function by value (a function of this module would go by reference, and
# executors cannot import tests/_cluster.py).
_PROBE_SOURCE = """
def probe(batches):
    import importlib.util, json, os, sys, time
    import pandas as pd
    import pyspark
    from pyspark import SparkFiles, TaskContext

    def parents(pid, depth=4):
        chain = []
        for _ in range(depth):
            try:
                stat = open(f"/proc/{pid}/stat").read()
                pid = int(stat[stat.rindex(")") + 2:].split()[1])
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode(errors="replace")
            except (OSError, ValueError):
                break
            chain.append({"pid": pid, "cmdline": cmd.strip()})
        return chain

    chain = parents(os.getpid())
    executor = [c["cmdline"].split("--executor-id ")[1].split()[0] for c in chain if "--executor-id " in c["cmdline"]]
    for batch in batches:
        time.sleep(PAUSE)
        tc = TaskContext.get()
        info = {
            "partition": tc.partitionId() if tc else None,
            "executor_id": executor[0] if executor else None,
            "executable": sys.executable,
            "version": sys.version.split()[0],
            "sparkdist_importable": importlib.util.find_spec("sparkdist") is not None,
            "pyspark_file": pyspark.__file__,
            "pyspark_version": pyspark.__version__,
            "cwd": os.getcwd(),
            "spark_files_root": SparkFiles.getRootDirectory(),
            "SPARK_EXECUTOR_ID": os.environ.get("SPARK_EXECUTOR_ID"),
            "SPARK_LOCAL_DIRS": os.environ.get("SPARK_LOCAL_DIRS"),
            "SPARK_EXECUTOR_DIRS": os.environ.get("SPARK_EXECUTOR_DIRS"),
            "PYTHONPATH": os.environ.get("PYTHONPATH"),
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON"),
            "pid": os.getpid(),
            "parents": chain,
        }
        yield pd.DataFrame({"info": [json.dumps(info)] * len(batch)})
"""


def probe_function(pause: float = 0.0) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """A ``mapInPandas`` function that reports, per row, what the Python worker it ran in looks like
    (after ``pause`` seconds per batch, so that a job's tasks spread over the executors)."""
    namespace: dict[str, Any] = {"__name__": "sparkdist_tests_probe", "PAUSE": pause}
    exec(compile(_PROBE_SOURCE, "<sparkdist-tests-probe>", "exec"), namespace)
    probe: Callable[[Iterator[Any]], Iterator[Any]] = namespace["probe"]
    return probe


def probe_executors(session: Any, partitions: int = 4, pause: float = 0.0) -> list[dict[str, Any]]:
    """Run the probe on ``partitions`` one-row partitions (classic or Spark Connect session); one
    report per partition. ``executor_id`` is read off the executor JVM's command line: Python workers
    have no SPARK_EXECUTOR_ID."""
    df = session.range(0, partitions, 1, partitions).mapInPandas(probe_function(pause), "info string")
    return [json.loads(row[0]) for row in df.collect()]


def check_executors(reports: list[dict[str, Any]], python: Path) -> str | None:
    """Why the executors are not what the mode promises (sparkdist importable, another Python, pyspark
    not from Spark's zip), or None when they are."""
    problems = []
    for r in reports:
        where = f"Python worker pid {r['pid']}"
        if r["sparkdist_importable"]:
            problems.append(f"{where}: sparkdist is importable on the executor; it must not be")
        if r["executable"] != str(python):  # not realpath: every venv's python links to the same binary
            problems.append(f"{where}: runs {r['executable']}, not the executors' Python {python}")
        if ".zip" + os.sep not in r["pyspark_file"]:
            problems.append(f"{where}: pyspark comes from {r['pyspark_file']}, not from $SPARK_HOME/python/lib/*.zip")
    return "\n".join(dict.fromkeys(problems)) or None  # one line per problem and Python worker
