#!/usr/bin/env python
"""AI judge throughput: a judging run through a real Celery worker against the stub answering as a judge.

    .venv/bin/python bench/ai_judge.py              # 2,000 items = 4,000 judge calls (both display orders)
    .venv/bin/python bench/ai_judge.py --quick      # 250 items = 500 calls
    .venv/bin/python bench/ai_judge.py --threads 24 --chunk-items 8 --latency 0.1 --limit 16

It creates its own PostgreSQL database (annotate_judgebench_<pid>, dropped at the end, also on Ctrl-C),
starts the stub (tests/stub_openai.py, `JudgeScript`: a position-consistent judge that prefers the longer
response) on 127.0.0.1 with a fixed latency (default 100 ms), one endpoint with a concurrency limit (default
16), a judge at temperature 0 on it, a ready pairwise batch, and a worker `celery worker -Q generation -P
threads -c <threads>` on the real Redis broker (its own Redis databases, BENCH_JUDGE_REDIS_URL /
BENCH_JUDGE_BROKER_URL, default 8 and 9, emptied first). It then times the run from judge_run_start (which
creates the verdict rows and enqueues the chunks) to the last verdict stored.

The ideal is calls x latency / limit (4,000 x 0.1 s / 16 = 25 s); the target is a ratio within 1.3. Also
reported: verdicts failed, duplicates (verdicts the stub answered more than once), the stub's peak number
of simultaneous requests (must not exceed the limit), AI judgments stored, the worker's CPU time per call
and the load average (the machines are shared: read the ratio next to it). Progress goes to stderr; the
last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench.common` and `tests.stub_openai` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    create_database,
    drop_database,
    emit_result,
    install_signal_handlers,
    log,
    percentile,
    require_loopback_url,
    tree_cpu_seconds,
)
from bench.generation_throughput import Worker, worker_env

REDIS_URL = os.environ.get("BENCH_JUDGE_REDIS_URL", "redis://127.0.0.1:6379/8")
BROKER_URL = os.environ.get("BENCH_JUDGE_BROKER_URL", "redis://127.0.0.1:6379/9")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="250 items instead of 2,000")
    parser.add_argument("--items", type=int, default=None, help="override the number of items")
    parser.add_argument("--latency", type=float, default=0.1, help="stub latency per request, seconds")
    parser.add_argument("--limit", type=int, default=16, help="the endpoint's max_concurrency")
    parser.add_argument("--threads", type=int, default=24, help="threads of each worker process (-c)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--chunk-items", type=int, default=8, help="JUDGE_CHUNK_ITEMS for the worker")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    return parser.parse_args()


def run(args: argparse.Namespace, database_url: str, tmp: Path) -> dict[str, Any]:
    import bench.generation_throughput as generation

    generation.REDIS_URL, generation.BROKER_URL = REDIS_URL, BROKER_URL
    env = worker_env(database_url)
    env["JUDGE_CHUNK_ITEMS"] = str(args.chunk_items)
    os.environ.update(
        {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "ALLOWED_ENDPOINT_HOSTS")}
    )
    os.environ["JUDGE_CHUNK_ITEMS"] = str(args.chunk_items)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db.models import Max

    from annotate.batches.models import Batch
    from annotate.batches.services import NewItem, items_add
    from annotate.endpoints.models import ModelEndpoint, SamplingConfig
    from annotate.judges.models import Judge, JudgeRun, Verdict, VerdictStatus
    from annotate.judges.services import judge_run_start
    from annotate.judgments.models import Judgment
    from tests.stub_openai import JudgeScript, StubOpenAI

    log("migrating")
    call_command("migrate", verbosity=0)
    for url in (REDIS_URL, BROKER_URL):
        require_loopback_url(url)
        redis.Redis.from_url(url).flushdb()

    items = args.items or (250 if args.quick else 2000)
    calls = items * 2
    script = JudgeScript()
    stub = StubOpenAI(latency_s=args.latency, handler=script).start()
    workers: list[Worker] = []
    try:
        endpoint = ModelEndpoint.objects.create(
            name="stub", base_url=stub.base_url, model="judge-model", max_concurrency=args.limit, timeout_s=30
        )
        config = SamplingConfig.objects.create(
            endpoint=endpoint, label="judge-t0", temperature=0.0, max_tokens=256
        )
        judge = Judge.objects.create(name="bench-judge", sampling_config=config)
        batch = Batch.objects.create(name="judge bench", track="helpfulness", mode="pairwise", status="open")
        detail = "It also explains the reasons step by step. "
        items_add(
            batch=batch,
            new_items=[
                NewItem(
                    conversation=[{"role": "user", "content": f"How do I solve problem {n}?"}],
                    responses=[
                        ("model-a", f"Short answer to {n}." + detail * (n % 3)),
                        ("model-b", f"Answer to problem {n}. " + detail * (1 + n % 4)),
                    ],
                )
                for n in range(items)
            ],
        )
        log(f"{items} items ({calls} calls); {args.workers} worker(s) (-P threads -c {args.threads})")
        workers = [Worker(env, args.threads, tmp / f"worker-{i}.log", i) for i in range(args.workers)]
        for worker in workers:
            worker.wait_ready()
        cpu_before = sum(tree_cpu_seconds(w.proc.pid) for w in workers)

        started_wall = time.time()
        started = time.monotonic()
        run_obj = judge_run_start(judge_id=judge.pk, batch_id=batch.pk)
        created_s = time.monotonic() - started
        last_report = started
        while True:
            pending = Verdict.objects.filter(run=run_obj, status=VerdictStatus.PENDING).count()
            if pending == 0:
                break
            if time.monotonic() - started > args.timeout:
                raise RuntimeError(f"{pending} of {calls} verdicts still pending after {args.timeout:.0f}s")
            if time.monotonic() - last_report > 2:
                log(f"{calls - pending}/{calls} verdicts, stub peak {stub.peak_concurrency()}")
                last_report = time.monotonic()
            time.sleep(0.05)
        last = Verdict.objects.filter(run=run_obj).aggregate(t=Max("judged_at"))["t"]
        wall = (last.timestamp() - started_wall) if last else time.monotonic() - started
        worker_cpu = sum(tree_cpu_seconds(w.proc.pid) for w in workers) - cpu_before
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and JudgeRun.objects.get(pk=run_obj.pk).status != "done":
            time.sleep(0.05)
        run_obj.refresh_from_db()
        ideal = calls * args.latency / args.limit
        completions = stub.completions()
        ok = Verdict.objects.filter(run=run_obj, status=VerdictStatus.OK).count()
        failed = Verdict.objects.filter(run=run_obj, status=VerdictStatus.FAILED).count()
        latencies = [
            v
            for v in Verdict.objects.filter(run=run_obj).values_list("latency_ms", flat=True)
            if v is not None
        ]
        records = [r for r in stub.records if r.finish is not None]
        served = [1000 * (r.finish - r.arrival) for r in records]
        span = (max(r.finish for r in records) - min(r.arrival for r in records)) if records else 0.0
        return {
            "benchmark": "ai_judge",
            "items": items,
            "calls": calls,
            "stub_latency_s": args.latency,
            "endpoint_limit": args.limit,
            "worker_threads": args.threads,
            "worker_processes": args.workers,
            "chunk_items": args.chunk_items,
            "run_start_s": round(created_s, 2),
            "ok": ok,
            "failed": failed,
            "duplicates": sum(1 for n in completions.values() if n > 1),
            "stub_requests": len(stub.records),
            "stub_peak_concurrency": stub.peak_concurrency(),
            "ai_judgments": Judgment.objects.filter(batch=batch).count(),
            "run_status": run_obj.status,
            "request_latency_p50_ms": percentile(latencies, 50),
            # Time in the stub itself (its sleep plus its own work), and how many requests it held on average:
            # with the limit always in use this is close to the limit.
            "stub_served_p50_ms": percentile(served, 50),
            "stub_mean_concurrency": round(sum(served) / 1000 / span, 2) if span else None,
            "request_latency_p99_ms": percentile(latencies, 99),
            "worker_cpu_s": round(worker_cpu, 2),
            "worker_cpu_ms_per_call": round(1000 * worker_cpu / max(1, calls), 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "target_ratio": 1.3,
            "wall_s": round(wall, 2),
            "ideal_s": round(ideal, 2),
            "ratio": round(wall / ideal, 3),
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
    name = f"annotate_judgebench_{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="annotate_judgebench_"))
    log(f"creating database {name}")
    database_url = create_database(name)
    try:
        result = run(args, database_url, tmp)
    finally:
        drop_database(name)
        log(f"dropped database {name}")
    r = result
    log(
        f"{r['calls']} calls in {r['wall_s']}s, ideal {r['ideal_s']}s, ratio {r['ratio']}; "
        f"failed {r['failed']}, duplicates {r['duplicates']}, peak {r['stub_peak_concurrency']}"
    )
    emit_result(result)
    return 0 if result["failed"] == 0 and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
