#!/usr/bin/env python
"""Generation throughput through a real Celery worker against the loopback OpenAI stub.

    .venv/bin/python bench/generation_throughput.py                  # 2,000 generations
    .venv/bin/python bench/generation_throughput.py --quick          # 500 generations
    .venv/bin/python bench/generation_throughput.py --db-reuse-max 1000 --workers 2 --threads 16
    .venv/bin/python bench/generation_throughput.py --chunk-size 16   # GENERATION_CHUNK_SIZE=16 in the worker

It creates its own PostgreSQL database (annotate_genbench_<pid>, dropped at the end, also on Ctrl-C),
starts the stub (tests/stub_openai.py) on 127.0.0.1 with a fixed latency (default 100 ms), one endpoint
with a concurrency limit (default 16) and a worker `celery worker -Q generation -P threads -c 32` on the
real Redis broker (its own Redis databases, BENCH_GEN_REDIS_URL / BENCH_GEN_BROKER_URL, default 6 and 7,
emptied first), then times a batch from batch_start_generation to the last response stored. The ideal
is generations x latency / limit (2,000 x 0.1 s / 16 = 12.5 s); the target is a ratio within 1.3.

Also reported: `duplicates` (responses the stub completed more than once), the stub's peak number of
simultaneous requests (must not exceed the limit), the worker's CPU time per generation, the database
sessions opened (Celery's Django fixup closes the connection around every task unless
CELERY_DB_REUSE_MAX is set; `--db-reuse-max N` runs the worker with it) and the load average (the
machines are shared: read the ratio next to it). Progress goes to stderr; the last stdout line is one
JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench.common` and `tests.stub_openai` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    CpuMeter,
    create_database,
    drop_database,
    emit_result,
    install_signal_handlers,
    log,
    percentile,
    require_loopback_url,
    tree_cpu_seconds,
)

CELERY = str(ROOT / ".venv" / "bin" / "celery")
REDIS_URL = os.environ.get("BENCH_GEN_REDIS_URL", "redis://127.0.0.1:6379/6")
BROKER_URL = os.environ.get("BENCH_GEN_BROKER_URL", "redis://127.0.0.1:6379/7")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="500 generations instead of 2,000")
    parser.add_argument("--generations", type=int, default=None, help="override the number of generations")
    parser.add_argument("--latency", type=float, default=0.1, help="stub latency per request, seconds")
    parser.add_argument("--limit", type=int, default=16, help="the endpoint's max_concurrency")
    parser.add_argument("--threads", type=int, default=32, help="threads per worker process (-c)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="GENERATION_CHUNK_SIZE of the worker (responses per task; default: the setting's default)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument(
        "--db-reuse-max",
        type=int,
        default=None,
        help="run the worker with CELERY_DB_REUSE_MAX=N (a temporary settings module): without it Celery's "
        "Django fixup closes the database connection around every task, so each task opens a new one",
    )
    return parser.parse_args()


def db_sessions(database_url: str) -> int:
    """PostgreSQL sessions opened so far on the run's database (pg_stat_database, PostgreSQL 14+)."""
    import psycopg

    name = database_url.rsplit("/", 1)[-1]
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def worker_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "ALLOWED_ENDPOINT_HOSTS": "127.0.0.1",
        # Production-like: no query log in memory, persistent database connections.
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


class Worker:
    def __init__(self, env: dict[str, str], threads: int, log_path: Path, index: int = 0) -> None:
        self.log_path = log_path
        self.name = f"genbench{os.getpid()}-{index}@{socket.gethostname()}"
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [CELERY, "-A", "annotate", "worker", "-Q", "generation", "-P", "threads", "-c", str(threads),
             "-n", self.name, "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "WARNING"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker answers a control ping (its log level is WARNING: no "ready" line to read)."""
        from annotate.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            if app.control.ping([self.name], timeout=0.5):
                return
        raise RuntimeError("worker not ready in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def run(args: argparse.Namespace, database_url: str, tmp: Path) -> dict[str, Any]:
    env = worker_env(database_url)
    if args.chunk_size:
        env["GENERATION_CHUNK_SIZE"] = str(args.chunk_size)
    if args.db_reuse_max:
        (tmp / "genbench_settings.py").write_text(
            f"from annotate.settings import *  # noqa: F403\nCELERY_DB_REUSE_MAX = {int(args.db_reuse_max)}\n"
        )
        env["PYTHONPATH"] = os.pathsep.join([str(tmp), str(ROOT)])
        env["DJANGO_SETTINGS_MODULE"] = "genbench_settings"
    os.environ.update(
        {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "ALLOWED_ENDPOINT_HOSTS")}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Count, Max, Q

    from annotate.batches.models import Batch, BatchStatus, Response, ResponseStatus
    from annotate.batches.services import NewItem, batch_start_generation, items_add
    from annotate.endpoints.models import ModelEndpoint, SamplingConfig
    from tests.stub_openai import StubOpenAI

    log("migrating")
    call_command("migrate", verbosity=0)
    for url in (REDIS_URL, BROKER_URL):
        require_loopback_url(url)
        redis.Redis.from_url(url).flushdb()

    generations = args.generations or (500 if args.quick else 2000)
    items = generations // 2
    stub = StubOpenAI(latency_s=args.latency).start()
    workers: list[Worker] = []
    try:
        endpoint = ModelEndpoint.objects.create(
            name="stub", base_url=stub.base_url, model="stub-model", max_concurrency=args.limit, timeout_s=30
        )
        configs = [
            SamplingConfig.objects.create(
                endpoint=endpoint, label=f"stub-t{t}", temperature=t, max_tokens=256
            )
            for t in (0.3, 0.9)
        ]
        batch = Batch.objects.create(name="throughput", track="helpfulness", mode="pairwise", status="draft")
        batch.sampling_configs.set(configs)
        conversation = "Explain, in a few paragraphs, how item {n} differs from the others."
        items_add(
            batch=batch,
            new_items=[
                NewItem(conversation=[{"role": "user", "content": conversation.format(n=n)}])
                for n in range(items)
            ],
        )
        log(f"{items} items x 2 responses; starting {args.workers} worker(s) (-P threads -c {args.threads})")
        workers = [Worker(env, args.threads, tmp / f"worker-{i}.log", i) for i in range(args.workers)]
        for worker in workers:
            worker.wait_ready()
        cpu_before = sum(tree_cpu_seconds(w.proc.pid) for w in workers)
        sessions_before = db_sessions(database_url)
        load_before = round(os.getloadavg()[0], 2)
        meter = CpuMeter(None, database_url.rsplit("/", 1)[-1]).start()

        started_wall = time.time()
        started = time.monotonic()
        batch_start_generation(batch_id=batch.pk)
        done = 0
        last_report = started
        while True:
            # One cheap query, four times a second: the wall time is read from the responses' own
            # generated_at, so polling faster would only take CPU from the workers being measured.
            counts = Response.objects.filter(item__batch=batch).aggregate(
                ok=Count("pk", filter=Q(status=ResponseStatus.OK)),
                failed=Count("pk", filter=Q(status=ResponseStatus.FAILED)),
            )
            done, failed = counts["ok"], counts["failed"]
            if done + failed >= generations:
                break
            if time.monotonic() - started > args.timeout:
                raise RuntimeError(f"only {done} of {generations} generations after {args.timeout:.0f}s")
            if time.monotonic() - last_report > 2:
                log(f"{done}/{generations} ok, stub peak {stub.peak_concurrency()}")
                last_report = time.monotonic()
            time.sleep(0.25)
        last_ok = Response.objects.filter(item__batch=batch, status=ResponseStatus.OK).aggregate(
            t=Max("generated_at")
        )["t"]
        wall = (last_ok.timestamp() - started_wall) if last_ok else time.monotonic() - started
        worker_cpu = sum(tree_cpu_seconds(w.proc.pid) for w in workers) - cpu_before
        cpu = meter.stop()
        sessions = db_sessions(database_url) - sessions_before
        # The batch opens in the same breath as its last response; give it a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Batch.objects.get(pk=batch.pk).status != BatchStatus.OPEN:
            time.sleep(0.05)
        batch.refresh_from_db()
        ideal = generations * args.latency / args.limit
        completions = stub.completions()
        latencies = list(Response.objects.filter(item__batch=batch).values_list("latency_ms", flat=True))
        latencies = [v for v in latencies if v is not None]
        records = [r for r in stub.records if r.finish is not None]
        served = [1000 * (r.finish - r.arrival) for r in records]
        span = (max(r.finish for r in records) - min(r.arrival for r in records)) if records else 0.0
        others = cpu["machine_busy_cpu_s"] - cpu["loadgen_cpu_s"] - cpu["postgres_cpu_s"] - worker_cpu
        return {
            "benchmark": "generation_throughput",
            "generations": generations,
            "stub_latency_s": args.latency,
            "endpoint_limit": args.limit,
            "worker_processes": args.workers,
            "celery_db_reuse_max": args.db_reuse_max,
            "worker_threads": args.threads,
            "chunk_size": int(env.get("GENERATION_CHUNK_SIZE") or settings.GENERATION_CHUNK_SIZE),
            "generation_wall_s": round(wall, 2),
            "ideal_s": round(ideal, 2),
            "ratio": round(wall / ideal, 3),
            "target_ratio": 1.3,
            "ok": done,
            "failed": Response.objects.filter(item__batch=batch, status=ResponseStatus.FAILED).count(),
            "duplicates": sum(1 for n in completions.values() if n > 1),
            "stub_requests": len(stub.records),
            "stub_peak_concurrency": stub.peak_concurrency(),
            "batch_status": batch.status,
            "request_latency_p50_ms": percentile(latencies, 50),
            "request_latency_p99_ms": percentile(latencies, 99),
            # Time in the stub itself (its sleep plus its own work) and how many requests it held on
            # average over the run: the limit is what an ideal run keeps in the stub all the time.
            "stub_served_p50_ms": percentile(served, 50),
            "stub_mean_concurrency": round(sum(served) / 1000 / span, 2) if span else None,
            "worker_cpu_s": round(worker_cpu, 2),
            "worker_cpu_ms_per_generation": round(1000 * worker_cpu / max(1, done), 2),
            "postgres_cpu_ms_per_generation": round(1000 * cpu["postgres_cpu_s"] / max(1, done), 2),
            # The stub and this script's polling run in this process.
            "bench_process_cpu_s": cpu["loadgen_cpu_s"],
            # CPU used by everything else on the machine (other people's work on a shared box), in cores.
            "other_cores": round(max(0.0, others) / (cpu["wall_s"] or 1.0), 2),
            "db_sessions_opened": sessions,
            "load_average_1m_start": load_before,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        for worker in workers:
            worker.stop()
        stub.stop()
        from django.db import connections

        connections.close_all()


def main() -> int:
    args = parse_args()
    install_signal_handlers()
    import tempfile

    name = f"annotate_genbench_{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="annotate_genbench_"))
    log(f"creating database {name}")
    database_url = create_database(name)
    try:
        result = run(args, database_url, tmp)
    finally:
        drop_database(name)
        log(f"dropped database {name}")
    log(
        f"{result['generations']} generations in {result['generation_wall_s']}s, ideal {result['ideal_s']}s, "
        f"ratio {result['ratio']}; duplicates {result['duplicates']}, peak {result['stub_peak_concurrency']}"
    )
    emit_result(result)
    return 0 if result["ok"] == result["generations"] and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
