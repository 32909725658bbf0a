"""Shared helpers for the benchmark scripts in bench/ (not part of the test run).

What lives here:
- logging to stderr and the one JSON result line on stdout (`log`, `emit_result`);
- a dedicated, throw-away PostgreSQL database per run (`create_database`, `drop_database`,
  `migrate`), always on a loopback address;
- a throw-away settings module and static-files manifest, so the app runs with DEBUG=false exactly as in
  production without writing anything into the checkout (`BenchSettings`);
- starting and stopping gunicorn on a free loopback port, and reading the CPU time and RSS of a process
  tree from /proc (`Gunicorn`, `tree_pids`, `tree_rss_bytes`, `tree_cpu_seconds`, `RssSampler`);
- percentiles (`percentile`, `summarize`).

Everything that starts a process or creates a database hands back something whose cleanup is safe to call
twice, so a script can put it in `finally:` and also survive Ctrl-C and SIGTERM (`install_signal_handlers`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
ADMIN_DATABASE_URL = os.environ.get(
    "BENCH_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_T0 = time.monotonic()


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress goes to stderr, stamped with seconds since the script started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def emit_result(result: dict[str, Any]) -> None:
    """The machine-readable result: one JSON object, the last line on stdout."""
    sys.stdout.write(json.dumps(result, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C does, so `finally:` blocks clean up."""

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


# --------------------------------------------------------------------------------------------------
# Percentiles
# --------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) with linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (p / 100.0) * (len(ordered) - 1)
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summarize(values_ms: Iterable[float], digits: int = 2) -> dict[str, Any]:
    """n, mean, p50, p90, p99 and max of latencies given in milliseconds."""
    values = sorted(values_ms)
    if not values:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "mean_ms": r(sum(values) / len(values)),
        "p50_ms": r(percentile(values, 50)),
        "p90_ms": r(percentile(values, 90)),
        "p99_ms": r(percentile(values, 99)),
        "max_ms": r(values[-1]),
    }


# --------------------------------------------------------------------------------------------------
# PostgreSQL: one throw-away database per run
# --------------------------------------------------------------------------------------------------


def require_loopback_url(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing to use {host!r}: benchmarks only ever target loopback addresses")


def database_url(name: str, admin_url: str = ADMIN_DATABASE_URL) -> str:
    """The admin URL with its database name replaced (postgres://user@host:port/<name>)."""
    parts = urlparse(admin_url)
    return urlunparse(parts._replace(scheme="postgres", path="/" + name))


def create_database(name: str, admin_url: str = ADMIN_DATABASE_URL) -> str:
    """Create an empty database `name`; returns its postgres:// URL."""
    require_loopback_url(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(name, admin_url)


def drop_database(name: str, admin_url: str = ADMIN_DATABASE_URL) -> None:
    """Drop `name` if it exists, disconnecting whoever is still connected. Safe to call twice."""
    require_loopback_url(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_exists(name: str, admin_url: str = ADMIN_DATABASE_URL) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


# --------------------------------------------------------------------------------------------------
# Running the app with production settings, from a temporary directory
# --------------------------------------------------------------------------------------------------


_SETTINGS_TEMPLATE = '''"""Written by bench/common.py for one benchmark run; deleted with its directory."""
import os

from annotate.settings import *  # noqa: F401,F403
from annotate.settings import STORAGES

# The checkout is shared: the manifest goes to this run's directory, not to <repo>/staticfiles.
STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
# The manifest without the gzip/brotli copies (collectstatic takes 2 s instead of 10 s). It changes how
# static files are served, which no benchmark measures, and nothing about how pages are rendered.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
'''


class BenchSettings:
    """A temporary directory holding a settings module (annotate.settings + STATIC_ROOT in the temp dir),
    VAR_DIR and the collected static files, plus the environment that runs the app with DEBUG=false."""

    def __init__(
        self,
        database_url: str,
        *,
        redis_url: str | None = "redis://127.0.0.1:6379/0",
        conn_max_age: int = 600,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        require_loopback_url(database_url)
        if redis_url:
            require_loopback_url(redis_url)
        self.dir = Path(tempfile.mkdtemp(prefix="annotate_bench_"))
        (self.dir / "bench_run_settings.py").write_text(_SETTINGS_TEMPLATE)
        (self.dir / "var").mkdir()
        self.static_root = self.dir / "static"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(self.dir), str(ROOT)) if p),
            "DJANGO_SETTINGS_MODULE": "bench_run_settings",
            "BENCH_STATIC_ROOT": str(self.static_root),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_COOKIES": "false",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "BEHIND_TLS_PROXY": "false",
            "CONN_MAX_AGE": str(conn_max_age),
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            "VAR_DIR": str(self.dir / "var"),
            "MEDIA_ROOT": str(self.dir / "var" / "media"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("CELERY_BROKER_URL", None)  # the filesystem broker under VAR_DIR; no task is run
        if redis_url:
            self.env["REDIS_URL"] = redis_url
            self.env["CACHE_KEY_PREFIX"] = f"bench{os.getpid()}"
        else:
            self.env.pop("REDIS_URL", None)
        self.env.update(extra_env or {})

    def manage(
        self, *args: str, check: bool = True, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `manage.py <args>` with this run's settings; raises with the output on failure."""
        proc = subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            text=True,
            capture_output=capture,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def start_manage(self, *args: str) -> subprocess.Popen[str]:
        """`manage.py <args>` in the background (e.g. collectstatic while data loads)."""
        return subprocess.Popen(
            [PYTHON, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def start_django(self, code: str, stdin: str = "") -> DjangoJob:
        """Start a Python snippet (run after django.setup() with this run's settings) in the background."""
        proc = subprocess.Popen(
            [PYTHON, "-c", "import django\ndjango.setup()\n" + code],
            cwd=ROOT,
            env=self.env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return DjangoJob(proc, stdin)

    def run_django(self, code: str, stdin: str = "") -> str:
        """Run a Python snippet after django.setup() with this run's settings; returns its stdout."""
        return self.start_django(code, stdin).result()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class DjangoJob:
    """A snippet running in a child process; `result()` waits for it and returns its stdout."""

    def __init__(self, proc: subprocess.Popen[str], stdin: str) -> None:
        self.proc = proc
        self._out: list[str] = []
        # Feed stdin and drain the pipes in a thread, so that neither side blocks meanwhile.
        self._thread = threading.Thread(target=self._talk, args=(stdin,), daemon=True)
        self._thread.start()

    def _talk(self, stdin: str) -> None:
        out, err = self.proc.communicate(stdin)
        self._out[:] = [out, err]

    def result(self) -> str:
        self._thread.join()
        out, err = self._out or ["", ""]
        if self.proc.returncode != 0:
            raise RuntimeError(f"django snippet failed ({self.proc.returncode}):\n{err[-4000:]}")
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def migrate(settings: BenchSettings) -> None:
    settings.manage("migrate", "--noinput", "-v0")


# --------------------------------------------------------------------------------------------------
# Processes: trees, CPU, RSS
# --------------------------------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    result, stack = [], [root]
    while stack:
        pid = stack.pop()
        if Path(f"/proc/{pid}").exists():
            result.append(pid)
        stack.extend(children.get(pid, []))
    return result


def tree_rss_bytes(root: int) -> int:
    """Sum of the resident set sizes of a process tree (shared pages counted once per process)."""
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    return total


def tree_cpu_seconds(root: int) -> float:
    """User+system CPU seconds of the live processes of a tree (exited children are not counted)."""
    total = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLK_TCK


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def machine_cpu() -> tuple[float, float, float]:
    """(busy, iowait, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return (total - idle - iowait) / _CLK_TCK, iowait / _CLK_TCK, total / _CLK_TCK


def python_speed() -> dict[str, float]:
    """CPU and wall milliseconds of a fixed pure-Python loop (sum(range(10**6)), best of 5): how fast this
    machine runs Python right now. About 10-15 ms CPU on an idle modern core; more CPU means a slower or
    shared core, wall far above CPU means waiting for a core (other work is running)."""
    best_cpu = best_wall = float("inf")
    for _ in range(5):
        c, w = time.process_time(), time.perf_counter()
        sum(range(10**6))
        best_cpu = min(best_cpu, time.process_time() - c)
        best_wall = min(best_wall, time.perf_counter() - w)
    return {"cpu_ms": round(best_cpu * 1000, 1), "wall_ms": round(best_wall * 1000, 1)}


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def backend_pids(database: str) -> list[int]:
    """PostgreSQL backends connected to `database` (to account the database CPU of one benchmark only)."""
    try:
        with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
            ).fetchall()
        return [int(r[0]) for r in rows]
    except Exception:  # noqa: BLE001 - not ours to inspect: no database figure then
        return []


def pids_cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            out[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


class CpuMeter:
    """Where the CPU went between start() and stop(): this process (the load generator), the app server's
    process tree, the PostgreSQL backends of one database, and everything else on the machine (other
    people's work on a shared box shows up there, and makes latencies worse than the app deserves)."""

    def __init__(self, server_pid: int | None, database: str | None) -> None:
        self.server_pid, self.database = server_pid, database

    def _db(self) -> dict[int, float]:
        return pids_cpu_seconds(backend_pids(self.database)) if self.database else {}

    def start(self) -> CpuMeter:
        self._t = time.monotonic()
        self._self = self_cpu_seconds()
        self._server = tree_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        self._db0 = self._db()
        self._machine = machine_cpu()
        return self

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self._t
        busy1, iowait1, _ = machine_cpu()
        busy0, iowait0, _ = self._machine
        db1 = self._db()
        # Backends that existed at start count their delta; new ones (new connections) all their time.
        db = sum(v - self._db0.get(pid, 0.0) for pid, v in db1.items())
        loadgen = self_cpu_seconds() - self._self
        server = tree_cpu_seconds(self.server_pid) - self._server if self.server_pid else 0.0
        machine = busy1 - busy0
        ncpu = os.cpu_count() or 1
        out: dict[str, Any] = {
            "wall_s": round(wall, 2),
            "loadgen_cpu_s": round(loadgen, 2),
            "server_cpu_s": round(server, 2),
            "postgres_cpu_s": round(db, 2),
            "machine_busy_cpu_s": round(machine, 2),
            "other_cpu_s": round(max(0.0, machine - loadgen - server - db), 2),
            "iowait_s": round(iowait1 - iowait0, 2),
            "cores": ncpu,
            "load_average_end": load_average(),
        }
        for key in ("loadgen", "server", "postgres", "machine_busy", "other"):
            out[f"{key}_cores"] = round(out[f"{key}_cpu_s"] / wall, 2) if wall > 0 else None
        return out


class RssSampler(threading.Thread):
    """Samples the RSS of a process tree every `interval` seconds; keeps the peak and the last value."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak = self.last = 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.last = tree_rss_bytes(self.root)
            self.peak = max(self.peak, self.last)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()


# --------------------------------------------------------------------------------------------------
# gunicorn
# --------------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Gunicorn:
    """gunicorn serving annotate.wsgi on 127.0.0.1:<free port>, in its own process group."""

    def __init__(
        self,
        settings: BenchSettings,
        *,
        workers: int,
        threads: int = 1,
        worker_class: str = "sync",
        preload: bool = False,
        keep_alive: int = 5,
        host: str = "127.0.0.1",
        app: str = "annotate.wsgi:application",
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise SystemExit("gunicorn is only ever bound to a loopback address here")
        self.settings, self.host = settings, host
        self.workers, self.threads, self.worker_class = workers, threads, worker_class
        self.preload, self.keep_alive, self.app = preload, keep_alive, app
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = settings.dir / f"gunicorn-{time.monotonic_ns()}.log"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        return {
            "worker_class": self.worker_class,
            "workers": self.workers,
            "threads": self.threads,
            "preload": self.preload,
            "keep_alive_s": self.keep_alive,
            "conn_max_age": int(self.settings.env.get("CONN_MAX_AGE", "0")),
        }

    def start(self, timeout: float = 180.0) -> None:
        self.port = free_port(self.host)
        args = [
            str(VENV_BIN / "gunicorn") if (VENV_BIN / "gunicorn").exists() else "gunicorn",
            self.app,
            "--bind",
            f"{self.host}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--keep-alive",
            str(self.keep_alive),
            "--timeout",
            "120",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
            "--worker-tmp-dir",
            "/dev/shm" if Path("/dev/shm").is_dir() else str(self.settings.dir),
        ]
        if self.preload:
            args.append("--preload")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.settings.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited during start-up:\n{self.log_tail()}")
            try:
                healthy = httpx.get(self.base_url + "/healthz", timeout=2.0).status_code == 200
                # Every worker must be up, not only the first one to answer.
                if healthy and len(tree_pids(self.proc.pid)) >= self.workers + 1:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        """SIGTERM to the master (graceful), SIGKILL to the whole group if it lingers. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the group id is the master's pid
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Workers left behind by a killed master share its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._log.close()
