"""Fault tests start their own PostgreSQL, Redis and gunicorn (tests/faults/infra.py) and break those."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.faults.infra import PrivatePostgres, PrivateRedis


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)


def source_database_url() -> str:
    """pytest-django's migrated test database: its schema is copied into the private clusters."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("fault tests need PostgreSQL (DATABASE_URL)")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    name = db["NAME"] if db["NAME"].startswith("test_") else connection.creation._get_test_db_name()
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


@pytest.fixture
def private_postgres(transactional_db: None) -> Iterator[PrivatePostgres]:
    if shutil.which("runuser") is None:
        pytest.skip("runuser is needed to start a private PostgreSQL as root")
    source = source_database_url()
    pg = PrivatePostgres().init()
    try:
        pg.start()
        pg.createdb()
        pg.copy_schema_from(source)
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis().start()
    try:
        yield redis
    finally:
        redis.cleanup()


from tests.faults.workers import private_broker, start_private_worker  # noqa: E402,F401
from tests.generation.conftest import start_worker, stub, worker_env  # noqa: E402,F401
