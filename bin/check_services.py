#!/usr/bin/env python3
"""Stop `make test` at once, with a clear message, when PostgreSQL or Redis is not reachable.

Reads DATABASE_URL, REDIS_URL and CELERY_BROKER_URL (the defaults below are the ones the Makefile's `test`
target uses), tries each server with a 3 s timeout, and prints what failed and how to start it. Exit status
0 when everything answers, 1 otherwise. Passwords in the URLs are never printed.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

TIMEOUT_S = 3
DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/annotate",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
}
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "psql"}
REDIS_SCHEMES = {"redis", "rediss"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Service:
    kind: str  # "PostgreSQL" or "Redis"
    variable: str  # the environment variable the URL came from
    url: str

    @property
    def parts(self) -> SplitResult:
        return urlsplit(self.url)

    @property
    def host(self) -> str:
        return self.parts.hostname or ""

    @property
    def port(self) -> int:
        try:
            port = self.parts.port
        except ValueError:
            port = None
        return port or (5432 if self.kind == "PostgreSQL" else 6379)

    @property
    def where(self) -> str:
        if not self.host or self.host.startswith("/"):
            return "the local Unix socket"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def services_from_env(environ: dict[str, str]) -> tuple[list[Service], list[str]]:
    """The servers to check, and notes about variables that name no server to check."""
    services: list[Service] = []
    notes: list[str] = []
    database_url = environ.get("DATABASE_URL") or DEFAULTS["DATABASE_URL"]
    if urlsplit(database_url).scheme in POSTGRES_SCHEMES:
        services.append(Service("PostgreSQL", "DATABASE_URL", database_url))
    else:
        notes.append("DATABASE_URL is not a PostgreSQL URL; not checked (the test suite expects PostgreSQL).")
    seen: set[str] = set()
    for variable in ("REDIS_URL", "CELERY_BROKER_URL"):
        url = environ.get(variable) or DEFAULTS[variable]
        scheme = urlsplit(url).scheme
        if scheme in REDIS_SCHEMES or scheme == "unix":
            if url not in seen:
                seen.add(url)
                services.append(Service("Redis", variable, url))
        else:
            notes.append(f"{variable} is not a Redis URL ({scheme}://); not checked.")
    return services, notes


def _socket_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT_S} s"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    return exc.strerror or type(exc).__name__


def tcp_problem(service: Service) -> str | None:
    """Whether anything listens at host:port, with a plain reason when not (None: it does)."""
    if not service.host or service.host.startswith("/"):
        return None  # a Unix socket: left to the driver
    try:
        with socket.create_connection((service.host, service.port), timeout=TIMEOUT_S):
            return None
    except OSError as exc:
        return _socket_reason(exc)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = lines[0] if lines else message.strip()
    # psycopg prefixes 'connection failed: connection to server at "h" (h), port p failed: <reason>'.
    return text.rsplit("failed: ", 1)[-1].strip() or text


def _libpq_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def postgres_problem(service: Service) -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed here (run `make venv-dev` and use .venv/bin/python)"
    url = _libpq_url(service.url)
    try:
        with psycopg.connect(url, connect_timeout=TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            return _first_line(str(exc))
    # The server answers but the database is missing: fine for the tests, which create their own
    # test database through the maintenance database, as Django does.
    parts = urlsplit(url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(maintenance, connect_timeout=TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return _first_line(str(exc))


def redis_problem(service: Service) -> str | None:
    try:
        import redis
    except ImportError:
        return "the redis client is not installed here (run `make venv-dev` and use .venv/bin/python)"
    try:
        client = redis.Redis.from_url(service.url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
        return None
    except redis.RedisError as exc:
        return _first_line(str(exc))
    except ValueError as exc:  # a malformed URL
        return f"invalid URL ({exc})"


def _postgres_version() -> str:
    try:
        versions = sorted(p.name for p in Path("/etc/postgresql").iterdir() if p.is_dir())
    except OSError:
        versions = []
    return versions[0] if versions else "<version>"


def start_hint(service: Service) -> str:
    if service.host not in LOCAL_HOSTS and not service.host.startswith("/"):
        return f"Check that the server at {service.where} is running and that this machine can reach it."
    if service.kind == "PostgreSQL":
        return (
            f"Start it with: pg_ctlcluster --skip-systemctl-redirect {_postgres_version()} main start"
            "   or: docker compose up -d db"
        )
    return (
        f'Start it with: redis-server --daemonize yes --bind 127.0.0.1 --port {service.port} --save "" '
        "--appendonly no   or: docker compose up -d redis"
    )


def check(service: Service) -> str | None:
    """None when the service answers, else the complete message for the user."""
    reason = tcp_problem(service)
    if reason is None:
        probe: Callable[[Service], str | None] = (
            postgres_problem if service.kind == "PostgreSQL" else redis_problem
        )
        reason = probe(service)
        if reason is not None:
            user = unquote(service.parts.username or "")
            who = f" as {user!r}" if user else ""
            return (
                f"{service.kind} at {service.where} ({service.variable}) answers, but connecting{who} fails: "
                f"{reason}"
            )
        return None
    return f"{service.kind} is not reachable at {service.where} ({reason}). {start_hint(service)}"


def main() -> int:
    services, notes = services_from_env(dict(os.environ))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    # dict.fromkeys: one message per server when REDIS_URL and CELERY_BROKER_URL share a dead one.
    problems = list(dict.fromkeys(m for service in services if (m := check(service)) is not None))
    for message in problems:
        print(message, file=sys.stderr)
    if problems:
        return 1
    print("Services reachable: " + ", ".join(f"{s.kind} at {s.where} ({s.variable})" for s in services))
    return 0


if __name__ == "__main__":
    sys.exit(main())
