"""Soak: mixed load for 10 minutes (`--quick`: 2) with PostgreSQL and Redis each restarted once.

Everything runs on private instances this script starts and stops itself: a PostgreSQL cluster and a
redis-server on free loopback ports (tests/faults/infra.py), gunicorn (DEBUG=false), one Celery worker on
every queue (threads), and the loopback OpenAI stub with 20% injected faults. The shared PostgreSQL and
Redis of the machine are never touched.

Load: 16 annotators claiming and submitting over HTTP (every submit retried with its idempotency key until
acknowledged), an admin importing prompts every 10 s and starting generation of a 40-item batch every 15 s,
and an export requested every 30 s. PostgreSQL is restarted at 1/3 of the run, Redis at 2/3.

Reported (last line, JSON): judgments acknowledged vs stored (must be equal), 5xx answers outside the outage
windows (must be 0), p99 latency outside them, RSS growth of web and worker between the first and the
last minute (peak per minute; must stay under 10%), generated responses by final state and duplicates.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import emit_result, install_signal_handlers, log, percentile, tree_rss_bytes  # noqa: E402
from tests.faults.infra import (  # noqa: E402
    PYTHON,
    VENV_BIN,
    Gunicorn,
    PrivatePostgres,
    PrivateRedis,
    app_env,
    run_django,
)
from tests.stub_openai import Call, Reply, StubOpenAI  # noqa: E402

ANNOTATORS = 16
OUTAGE_GRACE_S = 10.0  # after a restart, answers within this many seconds still count as the outage

SEED = """
import json
from annotate.api import services
from annotate.batches.models import BatchStatus
from tests import factories
admin = factories.UserFactory(username="soak_admin", is_staff=True, is_superuser=True, is_exporter=True)
endpoint = factories.ModelEndpointFactory(base_url=%(base)r, model="stub", max_concurrency=16, timeout_s=3)
configs = [factories.SamplingConfigFactory(endpoint=endpoint, label=f"soak-{i}", temperature=0.3 + 0.3 * i)
           for i in range(2)]
batch = factories.ready_batch_bulk(20000, overlap=1, guidelines="")
def token(user):
    return services.token_create(user=user, name="t", expires_in_days=None).secret
tokens = [token(factories.quick_annotator(f"soak{n}")) for n in range(%(annotators)d)]
ids = [c.pk for c in configs]
print(json.dumps({"batch": batch.pk, "tokens": tokens, "admin": token(admin), "configs": ids}))
"""


class Faults:
    """20% of generation requests fail with a transient fault (at most 2 in a row per response)."""

    def __init__(self) -> None:
        self.random = random.Random(11)

    def __call__(self, call: Call) -> Reply | None:
        if call.attempt > 2 or self.random.random() >= 0.2:
            return None
        return self.random.choice(
            [Reply.error(500), Reply.error(503), Reply.rate_limited("1"), Reply.reset()]
        )


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float, int]] = []  # (start, ms, status); status 0 = no answer
        self.acknowledged: set[int] = set()
        self.windows: list[tuple[float, float]] = []
        self.bodies_5xx: list[str] = []

    def add(self, start: float, ms: float, status: int, body: str = "") -> None:
        with self.lock:
            self.samples.append((start, ms, status))
            if status >= 500 and len(self.bodies_5xx) < 20:
                self.bodies_5xx.append(f"{status} {body[:200]}")

    def in_outage(self, t: float, ms: float = 0.0) -> bool:
        """Whether a request that started at `t` and took `ms` overlapped an outage (a request in flight
        when the server was killed fails with it, whenever it started) or its grace period."""
        end = t + ms / 1000
        return any(t <= b + OUTAGE_GRACE_S and end >= a - 0.5 for a, b in self.windows)


def request(
    client: httpx.Client, stats: Stats, method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    start = time.monotonic()
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TransportError:
        stats.add(start, (time.monotonic() - start) * 1000, 0)
        return None
    stats.add(start, (time.monotonic() - start) * 1000, response.status_code, response.text)
    return response


def annotator(base: str, token: str, batch: int, stats: Stats, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30) as client:
        while not stop.is_set():
            claimed = request(client, stats, "POST", f"/api/v1/batches/{batch}/claim/")
            if claimed is None or claimed.status_code != 200:
                time.sleep(0.2)
                continue
            assignment = claimed.json()
            body = {
                "idempotency_key": f"{token[-12:]}-{assignment['id']}",
                "chosen": assignment["responses"][0]["id"],
                "strength": random.choice(["better", "slightly_better", "significantly_better"]),
            }
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the same key until acknowledged (or definitively refused)
                done = request(
                    client, stats, "POST", f"/api/v1/assignments/{assignment['id']}/submit/", json=body
                )
                if done is not None and done.status_code in (200, 201):
                    with stats.lock:
                        stats.acknowledged.add(int(done.json()["id"]))
                    break
                if done is not None and done.status_code < 500 and done.status_code != 429:
                    break
                time.sleep(0.3)


def admin_load(base: str, token: str, configs: list[int], stats: Stats, stop: threading.Event) -> list[int]:
    """Imports, generations and exports, on a schedule; returns the ids of the batches it generated."""
    generated: list[int] = []
    n = 0
    next_import = next_generation = next_export = time.monotonic()
    with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60) as client:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_import or now >= next_generation:
                generate = now >= next_generation
                n += 1
                created = request(
                    client,
                    stats,
                    "POST",
                    "/api/v1/batches/",
                    json={"name": f"soak {n}", "track": "helpfulness", "sampling_configs": configs},
                )
                if created is not None and created.status_code == 201:
                    batch_id = created.json()["id"]
                    rows = 40 if generate else 200
                    jsonl = "".join(
                        json.dumps({"prompt": f"Soak {n} question {i}: explain thing {i}."}) + "\n"
                        for i in range(rows)
                    )
                    request(
                        client,
                        stats,
                        "POST",
                        f"/api/v1/batches/{batch_id}/import/",
                        content=jsonl.encode(),
                        headers={"Content-Type": "application/x-ndjson"},
                    )
                    if generate:
                        started = request(client, stats, "POST", f"/api/v1/batches/{batch_id}/start/")
                        if started is not None and started.status_code == 200:
                            generated.append(batch_id)
                if generate:
                    next_generation = now + 15
                else:
                    next_import = now + 10
            if now >= next_export:
                request(
                    client,
                    stats,
                    "POST",
                    "/api/v1/exports/",
                    json={"schema": "pairwise_flat", "format": "jsonl"},
                )
                next_export = now + 30
            time.sleep(0.5)
    return generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 minutes instead of 10")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load (overrides --quick)")
    args = parser.parse_args()
    duration = args.duration or (120.0 if args.quick else 600.0)
    install_signal_handlers()

    pg = PrivatePostgres().init()
    redis = PrivateRedis()
    stub = StubOpenAI(latency_s=0.05, handler=Faults()).start()
    server: Gunicorn | None = None
    worker: subprocess.Popen[bytes] | None = None
    tmp: Path | None = None
    try:
        pg.start()
        pg.createdb()
        redis.start()
        env, tmp = app_env(
            pg.url,
            redis_url=redis.url(0),
            broker_url=redis.url(1),
            ALLOWED_ENDPOINT_HOSTS="127.0.0.1",
            GENERATION_BACKOFF_BASE_MS="300",
            GENERATION_BACKOFF_MAX_S="5",
            GENERATION_RETRY_AFTER_MAX_S="5",
            CONN_MAX_AGE="60",
            API_SESSION_RATE_PER_MINUTE="100000",
        )
        log("migrating the private database")
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        seeded = json.loads(
            run_django(env, SEED % {"base": stub.base_url, "annotators": ANNOTATORS}).splitlines()[-1]
        )
        server = Gunicorn(env, tmp / "gunicorn.log", workers=2, threads=8).start()
        worker_log = (tmp / "worker.log").open("ab")
        worker = subprocess.Popen(
            [str(VENV_BIN / "celery"), "-A", "annotate", "worker", "-Q", "default,generation,exports",
             "-P", "threads", "-c", "16", "--without-gossip", "--without-mingle", "-l", "WARNING"],
            cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log(f"load for {duration:.0f}s: {ANNOTATORS} annotators, imports, generations, exports")

        stats = Stats()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=annotator, args=(server.url, t, seeded["batch"], stats, stop), daemon=True
            )
            for t in seeded["tokens"]
        ]
        generated: list[int] = []
        admin = threading.Thread(
            target=lambda: generated.extend(
                admin_load(server.url, seeded["admin"], seeded["configs"], stats, stop)
            ),
            daemon=True,
        )
        rss: list[tuple[float, int, int]] = []
        t0 = time.monotonic()
        for thread in [*threads, admin]:
            thread.start()
        restarted = {"postgres": False, "redis": False}
        while (elapsed := time.monotonic() - t0) < duration:
            rss.append((elapsed, tree_rss_bytes(server.proc.pid), tree_rss_bytes(worker.pid)))  # type: ignore[union-attr]
            if not restarted["postgres"] and elapsed >= duration / 3:
                log("restarting PostgreSQL")
                stats.windows.append(pg.restart(down_s=2.0))
                restarted["postgres"] = True
            if not restarted["redis"] and elapsed >= 2 * duration / 3:
                log("restarting Redis")
                stats.windows.append(redis.restart(down_s=2.0))
                restarted["redis"] = True
            time.sleep(2)
        stop.set()
        for thread in [*threads, admin]:
            thread.join(timeout=90)
        log("load stopped; letting generations settle")
        settle_until = time.monotonic() + 60
        url = pg.url.replace("postgres://", "postgresql://")
        while time.monotonic() < settle_until:
            with psycopg.connect(url) as conn:
                pending = conn.execute(
                    "SELECT count(*) FROM batches_response r JOIN batches_item i ON i.id = r.item_id "
                    "WHERE i.batch_id = ANY(%s) AND r.status = 'pending'",
                    (generated,),
                ).fetchone()[0]
            if not pending:
                break
            time.sleep(2)
        with psycopg.connect(url) as conn:
            stored = {row[0] for row in conn.execute("SELECT id FROM judgments_judgment")}
            responses = dict(
                conn.execute(
                    "SELECT r.status, count(*) FROM batches_response r "
                    "JOIN batches_item i ON i.id = r.item_id WHERE i.batch_id = ANY(%s) GROUP BY r.status",
                    (generated,),
                ).fetchall()
            )
            exports = dict(
                conn.execute("SELECT status, count(*) FROM exports_exportjob GROUP BY status").fetchall()
            )
        duplicates = sum(1 for count in stub.completions().values() if count > 1)

        outside = [(s, ms, st) for s, ms, st in stats.samples if not stats.in_outage(s, ms)]
        errors_outside = [st for _, _, st in outside if st >= 500 or st == 0]
        latencies = [ms for _, ms, st in outside if 0 < st < 500]

        def growth(index: int) -> float:
            first = max((r[index] for r in rss if r[0] <= 60), default=0)
            last = max((r[index] for r in rss if r[0] >= rss[-1][0] - 60), default=0)
            return round(100.0 * (last - first) / first, 1) if first else 0.0

        result = {
            "benchmark": "soak",
            "duration_s": round(duration),
            "acknowledged": len(stats.acknowledged),
            "stored": len(stored),
            "acknowledged_equals_stored": stored == stats.acknowledged,
            "requests": len(stats.samples),
            "errors_5xx_outside_outage": len(errors_outside),
            "errors_in_outage": sum(
                1 for s, ms, st in stats.samples if stats.in_outage(s, ms) and (st >= 500 or st == 0)
            ),
            "status_counts": dict(Counter(st for _, _, st in stats.samples)),
            "p50_ms": round(percentile(latencies, 50) or 0, 1),
            "p99_ms": round(percentile(latencies, 99) or 0, 1),
            "rss_growth_pct": max(growth(1), growth(2)),
            "rss_growth_web_pct": growth(1),
            "rss_growth_worker_pct": growth(2),
            "rss_peak_web_mb": round(max(r[1] for r in rss) / 2**20, 1),
            "rss_peak_worker_mb": round(max(r[2] for r in rss) / 2**20, 1),
            "generation_batches": len(generated),
            "responses_by_status": responses,
            "responses_generated_twice": duplicates,
            "exports_by_status": exports,
            "outage_windows_s": [[round(a - t0, 1), round(b - t0, 1)] for a, b in stats.windows],
            "sample_5xx_outside": stats.bodies_5xx[:5] if errors_outside else [],
        }
        emit_result(result)
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if server is not None:
            server.stop()
        stub.stop()
        redis.cleanup()
        pg.cleanup()


if __name__ == "__main__":
    main()
