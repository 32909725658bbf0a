"""PostgreSQL restarted under load: 16 annotators claim and submit over HTTP (gunicorn, DEBUG=false) while
their private PostgreSQL is killed and started again.

- requests during the outage get 503 with the JSON error (never a traceback, never another 5xx);
- the app recovers by itself within seconds (CONN_HEALTH_CHECKS replaces the dead connections);
- every submit is retried with its idempotency key until acknowledged, and the stored judgments are
  exactly the acknowledged ones: none lost, none doubled.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.faults.infra import Gunicorn, PrivatePostgres, app_env, run_django

ANNOTATORS = 16
SEED = """
import json
from annotate.api import services
from tests import factories
batch = factories.ready_batch_bulk(2000, overlap=1, guidelines="")
tokens = [
    services.token_create(user=factories.quick_annotator(f"ann{n}"), name="t", expires_in_days=None).secret
    for n in range(%d)
]
print(json.dumps({"batch": batch.pk, "tokens": tokens}))
"""


@dataclass
class Tally:
    acknowledged: set[int] = field(default_factory=set)
    submits_sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    unavailable_at: list[float] = field(default_factory=list)  # monotonic times of 503s / refused sockets
    ok_at: list[float] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def annotator(base: str, token: str, batch: int, tally: Tally, stop: threading.Event) -> None:
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:

        def send(method: str, path: str, body: Any = None) -> httpx.Response | None:
            """Send until the answer is not 'unavailable' (or the test ends): a client that retries."""
            while True:
                try:
                    response = client.request(method, path, json=body)
                except httpx.TransportError:
                    with tally.lock:
                        tally.unavailable_at.append(time.monotonic())
                    if stop.is_set():
                        return None
                    time.sleep(0.2)
                    continue
                with tally.lock:
                    tally.statuses[response.status_code] += 1
                    if "Traceback" in response.text or 'File "/' in response.text:
                        tally.bad.append(f"{method} {path}: a traceback: {response.text[:300]}")
                retry = response.status_code == 409 and response.json()["error"]["code"] == "claim_contention"
                if retry:  # the API says "try again": a lost race for a row lock, not a fault
                    time.sleep(0.05)
                    continue
                if response.status_code == 503:
                    error = response.json()["error"]
                    if error["code"] != "database_unavailable" or "Retry-After" not in response.headers:
                        tally.bad.append(
                            f"{method} {path}: 503 without the JSON error: {response.text[:300]}"
                        )
                    with tally.lock:
                        tally.unavailable_at.append(time.monotonic())
                    if stop.is_set():
                        return None
                    time.sleep(0.2)
                    continue
                if response.status_code >= 500:
                    tally.bad.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
                with tally.lock:
                    tally.ok_at.append(time.monotonic())
                return response

        while not stop.is_set():
            claimed = send("POST", f"/api/v1/batches/{batch}/claim/")
            if claimed is None or claimed.status_code == 204:
                return
            if claimed.status_code != 200:
                tally.bad.append(f"claim: {claimed.status_code} {claimed.text[:300]}")
                return
            assignment = claimed.json()
            answer = {
                "idempotency_key": f"{token[-12:]}-{assignment['id']}",
                "chosen": assignment["responses"][0]["id"],
                "strength": "better",
            }
            with tally.lock:
                tally.submits_sent += 1
            # Retried with the same key until acknowledged, even once the test is stopping.
            while True:
                submitted = send("POST", f"/api/v1/assignments/{assignment['id']}/submit/", answer)
                if submitted is not None:
                    break
                stop_wait = time.monotonic() + 20
                if time.monotonic() > stop_wait:
                    return
            if submitted.status_code in (200, 201):
                with tally.lock:
                    tally.acknowledged.add(int(submitted.json()["id"]))
            else:
                tally.bad.append(f"submit: {submitted.status_code} {submitted.text[:300]}")


def test_a_postgres_restart_under_load_loses_and_doubles_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    env, _ = app_env(private_postgres.url, CONN_MAX_AGE="60")
    seeded = json.loads(run_django(env, SEED % ANNOTATORS).strip().splitlines()[-1])
    server = Gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=8).start()
    tally = Tally()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=annotator, args=(server.url, token, seeded["batch"], tally, stop), daemon=True
        )
        for token in seeded["tokens"]
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(3)
        acknowledged_before = len(tally.acknowledged)
        down_at, up_at = private_postgres.restart(down_s=1.5)
        time.sleep(4)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        stop.set()
        server.stop()

    print(f"statuses {dict(tally.statuses)}, acknowledged before the outage {acknowledged_before}")
    assert not tally.bad, "\n".join(tally.bad[:10]) + "\n" + server.log()
    assert acknowledged_before >= 5, f"too little load before the outage: {acknowledged_before}"
    outage = [t for t in tally.unavailable_at if down_at - 0.5 <= t <= up_at + 5]
    assert outage, "no request met the outage"
    assert all(down_at - 0.5 <= t <= up_at + 5 for t in tally.unavailable_at), (
        "unavailable outside the outage"
    )
    first_ok_after = min(t for t in tally.ok_at if t > up_at)
    assert first_ok_after - up_at < 3.0, f"recovered {first_ok_after - up_at:.1f}s after PostgreSQL was back"
    assert len(tally.acknowledged) >= acknowledged_before + 5, "little work after the restart"
    with psycopg.connect(private_postgres.url.replace("postgres://", "postgresql://")) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM judgments_judgment")}
    assert stored == tally.acknowledged, (len(stored), len(tally.acknowledged))
    print(
        f"{len(stored)} judgments stored = acknowledged; {tally.submits_sent} submits; "
        f"statuses {dict(tally.statuses)}; {len(tally.unavailable_at)} unavailable answers; "
        f"back {first_ok_after - up_at:.2f}s after restart"
    )
