"""The quality feature on both supported databases: the embedded SQLite of `make run` and PostgreSQL.

portable_run.py runs in a process of its own on a fresh database (migrate, seed_demo, judgments through the
services, the dashboards' first visits, the stats API, the beat job's tasks and the recompute services) and
prints what the API returned. Run on SQLite its figures must be there; run on a fresh PostgreSQL database
the same script must print the same figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("portable_run.py")


def run(tmp_path: Path, database_url: str) -> dict[str, Any]:
    # As `make run` has it: no Redis, no broker server; only the database differs between the two runs.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DJANGO_") and k not in {"REDIS_URL", "CELERY_BROKER_URL"}
    }
    env.update(DEBUG="true", VAR_DIR=str(tmp_path / "var"), DATABASE_URL=database_url)
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("quality-sqlite")
    return run(tmp, f"sqlite:///{tmp / 'db.sqlite3'}")


def test_quality_runs_on_sqlite(on_sqlite: dict[str, Any]) -> None:
    assert on_sqlite["judgments"] == {"pairwise": 24, "ranking": 24}  # 8 items x 3 annotators each
    pairwise, ranking, track = (
        on_sqlite["batches"]["pairwise"],
        on_sqlite["batches"]["ranking"],
        on_sqlite["track"],
    )
    assert pairwise["judgments"] == 24 and pairwise["items"] == 8 and pairwise["annotators"] == 3
    assert pairwise["agreement"]["agreement_rate"]["value"] is not None
    assert pairwise["agreement"]["alpha_ordinal"]["items"] == 8
    assert pairwise["agreement"]["fleiss_kappa"]["raters"] == 3
    assert sum(pairwise["strength_distribution"].values()) == 24
    # Four UTC days, 6 judgments each (portable_run.py puts some a microsecond before midnight).
    assert pairwise["judgments_per_day"] == [
        {"day": f"2026-03-0{d}", "judgments": 6, "cumulative": 6 * d} for d in range(1, 5)
    ]
    assert pairwise["leaderboard"]["total_comparisons"] > 0
    assert [a["judgments"] for a in pairwise["annotator_stats"]] == [8, 8, 8]
    assert all(a["left_share"] is not None for a in pairwise["annotator_stats"])
    # Rankings: their slots (the alpha over rankings) and their pairs (6 per judgment of 4 responses).
    assert ranking["agreement"]["alpha_ranking"]["items"] == 8
    assert ranking["agreement"]["alpha_ranking"]["value"] is not None
    assert ranking["leaderboard"]["total_comparisons"] == 24 * 6
    assert track["judgments"] == 48
    assert track["leaderboard"]["total_comparisons"] == pairwise["leaderboard"]["total_comparisons"] + 24 * 6


def test_postgresql_gives_the_same_figures(tmp_path: Path, on_sqlite: dict[str, Any]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the comparison needs PostgreSQL (DATABASE_URL)")
    db = connection.settings_dict
    name = f"{db['NAME']}_portable_{os.getpid()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    server = f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        on_postgresql = run(tmp_path, f"{server}/{name}")
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    assert on_postgresql == on_sqlite


@pytest.mark.django_db
def test_the_large_reads_run_without_jit_and_put_the_setting_back() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("JIT is a PostgreSQL setting")
    from annotate.quality.services import _analytic_cursor

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = on")  # the test runs in a transaction: as a caller's would be
        with _analytic_cursor() as inner:
            inner.execute("SHOW jit")
            assert inner.fetchone() == ("off",)
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("on",)
