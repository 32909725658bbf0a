"""Private PostgreSQL clusters, Redis servers and gunicorn processes that a fault test starts, restarts and
stops itself. The shared PostgreSQL (5432) and Redis (6379) of the machine are never touched.

Also used by bench/soak.py, so this module imports nothing from Django or pytest.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def pg_bin(name: str) -> str:
    found = sorted(str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed (/usr/lib/postgresql/*/bin)")
    return found[-1]


class PrivatePostgres:
    """A throw-away cluster on a free loopback port. fsync is off (it has to survive its processes being
    killed, not power cuts: the WAL written to the OS survives a kill), synchronous_commit stays on (an
    acknowledged commit must survive the kill). initdb refuses root, so as root it runs as `postgres`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="annotate_pg_"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/annotate"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n{self.tail()}")
        return result

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def init(self) -> PrivatePostgres:
        self._run(
            pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", check=False)

    def restart(self, down_s: float = 1.0, mode: str = "immediate") -> tuple[float, float]:
        """Stop (immediate: connections die as in a crash), stay down `down_s`, start. (down_at, up_at)."""
        down_at = time.monotonic()
        self.stop(mode)
        time.sleep(down_s)
        self.start()
        return down_at, time.monotonic()

    def createdb(self, name: str = "annotate") -> None:
        self._run(pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def copy_schema_from(self, source_url: str, name: str = "annotate") -> None:
        """The schema (tables, constraints, triggers) of an already migrated database: seconds instead of
        running every migration again."""
        dump = subprocess.run(
            [pg_bin("pg_dump"), "--schema-only", "--no-owner", "--no-privileges", source_url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        rows = subprocess.run(
            [
                pg_bin("pg_dump"),
                "--data-only",
                "-t",
                "django_migrations",
                "-t",
                "django_content_type",
                source_url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        subprocess.run(
            [
                pg_bin("psql"),
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                f"postgres://postgres@127.0.0.1:{self.port}/{name}",
            ],
            input=dump + rows,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server of our own on a free port, with an append-only file like production's (so a restart
    keeps the queued tasks, as docker-compose.yml's redis does)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="annotate_redis_"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> PrivateRedis:
        args = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no",
        ]  # fmt: skip
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self, down_s: float = 1.0) -> tuple[float, float]:
        down_at = time.monotonic()
        self.stop()
        time.sleep(down_s)
        self.start()
        return down_at, time.monotonic()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


SETTINGS_MODULE = '''"""Written by tests/faults/infra.py: the settings, static files without a manifest."""
from annotate.settings import *  # noqa: F401,F403
from annotate.settings import STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
'''


def app_env(
    database_url: str, *, redis_url: str = "", broker_url: str = "", **extra: str
) -> tuple[dict[str, str], Path]:
    """Production-like environment (DEBUG=false) for subprocesses of the app; returns (env, its temp dir)."""
    tmp = Path(tempfile.mkdtemp(prefix="annotate_app_"))
    (tmp / "fault_app_settings.py").write_text(SETTINGS_MODULE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "fault_app_settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
            "BEHIND_TLS_PROXY": "false",
            "DATABASE_URL": database_url,
            "VAR_DIR": str(tmp / "var"),
            "MEDIA_ROOT": str(tmp / "media"),
            "LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
            "API_TOKEN_RATE_PER_MINUTE": "100000",
            "CACHE_KEY_PREFIX": f"fault{os.getpid()}{secrets.token_hex(3)}",
        }
    )
    for name, value in (("REDIS_URL", redis_url), ("CELERY_BROKER_URL", broker_url)):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    env.update(extra)
    return env, tmp


def run_django(env: dict[str, str], code: str) -> str:
    """A snippet run after django.setup() in a child process with `env`; returns its stdout."""
    result = subprocess.run(
        [PYTHON, "-c", "import django\ndjango.setup()\n" + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"django snippet failed:\n{result.stderr[-4000:]}")
    return result.stdout


class Gunicorn:
    """gunicorn serving the app on a free loopback port, in its own process group."""

    def __init__(
        self, env: dict[str, str], log: Path, *, workers: int = 2, threads: int = 4, timeout: int = 30
    ) -> None:
        self.env, self.log_path = env, log
        self.port = free_port()
        self.args = [
            str(VENV_BIN / "gunicorn"), "annotate.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(workers), "--threads", str(threads), "--timeout", str(timeout),
            "--graceful-timeout", "20", "--worker-tmp-dir", "/dev/shm",
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        import urllib.request

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return self
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not up after 30 s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            self._log.close()
