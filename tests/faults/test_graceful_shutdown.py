"""SIGTERM to gunicorn (what `docker compose stop` sends): the request in flight is answered in full and the
server then exits cleanly within its graceful timeout (compose's stop_grace_period must exceed it)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from annotate.accounts.models import User
from annotate.api import services as api_services
from tests import factories
from tests.faults.conftest import source_database_url
from tests.faults.infra import Gunicorn, app_env


@pytest.mark.django_db(transaction=True)
def test_sigterm_to_gunicorn_finishes_the_request_in_flight(tmp_path: Path) -> None:
    user = factories.UserFactory(username="late")
    token = api_services.token_create(user=user, name="t", expires_in_days=None).secret
    database = source_database_url()
    env, _tmp = app_env(database)
    server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1, threads=2).start()
    result: dict[str, object] = {}

    def slow_request() -> None:
        try:
            response = httpx.get(
                server.url + "/api/v1/me/", headers={"Authorization": f"Token {token}"}, timeout=30
            )
            result["status"], result["body"] = response.status_code, response.json()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            result["error"] = repr(exc)

    try:
        # Hold the users table: the request blocks in its first query, in flight for as long as we like.
        # (Watched from a second connection: inside a transaction, pg_stat_activity is one snapshot.)
        with (
            psycopg.connect(database, autocommit=False) as lock,
            psycopg.connect(database, autocommit=True) as watch,
        ):
            lock.execute(f"LOCK TABLE {User._meta.db_table} IN ACCESS EXCLUSIVE MODE")
            client = threading.Thread(target=slow_request)
            client.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
                    "current_database()"
                ).fetchone()
                if waiting and waiting[0]:
                    break
                time.sleep(0.05)
            else:
                rows = watch.execute(
                    "SELECT datname, state, wait_event_type, left(query, 80) FROM pg_stat_activity"
                ).fetchall()
                pytest.fail(f"the request never reached the database: {result} {rows}")

            server.terminate()  # SIGTERM to the master
            time.sleep(1.0)
            assert server.proc is not None and server.proc.poll() is None  # still finishing the request
        # The lock is released when the block ends (rollback): the request goes on.
        client.join(timeout=20)
        assert result.get("status") == 200, result
        assert result["body"]["username"] == "late"  # type: ignore[index]
        assert server.proc.wait(timeout=20) == 0, server.log()
    finally:
        with contextlib.suppress(Exception):
            server.stop()
