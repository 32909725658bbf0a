"""Export throughput: trl_preference as JSONL and as Parquet versus a plain COPY of the same rows.

    .venv/bin/python bench/export_throughput.py            # 1,000,000 pairwise judgments
    .venv/bin/python bench/export_throughput.py --quick    # 100,000 (under two minutes)

What it does:
1. creates a throw-away PostgreSQL database (bench.common), migrates it, and bulk-loads with COPY (foreign key
   triggers off for the load: session_replication_role = replica) N pairwise helpfulness judgments: 300
   annotators, 10 batches, N/2 items (10% multi-turn) with 2 responses each from 4 sampling configs, N
   submitted assignments; then VACUUM ANALYZE;
2. in a fresh subprocess each (so that each one's peak RSS is its own):
   - copy:    `COPY (<the export's own comparison query>) TO STDOUT`, every byte read and dropped (the
              ratios are against this one, with the server's default settings);
   - copy_jit_off: the same with `SET jit = off`, the setting the exports read with (queries.snapshot):
              `*_ratio_vs_copy_jit_off` compares like with like;
   - jsonl:   the real `export_build` of a trl_preference / jsonl job (snapshot, server-side cursor, rows,
              orjson, sha256, temp file, save into the default storage, manifest and card);
   - parquet: the same with format parquet;
   each child reports its wall time and its peak RSS from getrusage(RUSAGE_SELF).ru_maxrss (the kernel's
   high-water mark of the process: interpreter, Django, pyarrow and the export together);
3. drops the database.

The machine is shared: other benchmarks and test suites run at the same time, so timings are noisy; the
ratios come from runs made back to back in one invocation. The last stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    BenchSettings,
    create_database,
    drop_database,
    emit_result,
    install_signal_handlers,
    log,
    migrate,
)

N_USERS = 300
N_BATCHES = 10
N_CONFIGS = 4
_TEXT = """the model answer question data safety helpful response explain detail context example python code
function return value list table user assistant prompt train reward policy gradient sample token
length result error fix test run build deploy server client query index cursor stream memory"""
WORDS = _TEXT.split()
STRENGTHS = ("significantly_better", "better", "slightly_better", "negligibly_better_or_unsure")
NOW = "2026-01-01 00:00:00+00"


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _sentences(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(6, 16))).capitalize() + "." for _ in range(n)]


COLUMNS = {
    "accounts_user": """id password is_superuser username first_name last_name email is_staff is_active
        date_joined kind is_exporter pseudonym""",
    "batches_batch": """id created_at updated_at name description track mode responses_per_item overlap
        prompt_source guidelines guidelines_version lease_minutes gold_rate status adaptive_overlap
        overlap_ceiling adaptive_rule flag_min_agreement flag_min_gold_accuracy flag_min_evidence""",
    "batches_item": """id conversation source external_id content_hash metadata is_gold gold_expected
        dialogue_id turn_index status wanted taken created_at batch_id created_by_id""",
    "batches_response": """id slot model_name content content_html status error attempts latency_ms
        prompt_tokens completion_tokens generated_at request_id item_id sampling_config_id""",
    "assignments_assignment": """id status leased_at expires_at finished_at positions guidelines_version
        skip_reason flag flag_note annotator_id batch_id item_id""",
    "judgments_judgment": """id track mode strength ranking safety_labels safety_bin flagged position_chosen
        rationale time_spent_ms idempotency_key guidelines_version created_at annotator_id assignment_id
        batch_id chosen_id item_id rejected_id""",
}


def _copy_in(cur: Any, table: str, lines: list[str]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(COLUMNS[table].split())}) FROM STDIN") as copy:
        copy.write("".join(lines))


def load(url: str, n_judgments: int, seed: int = 7) -> None:
    """N pairwise judgments and everything they hang on, with COPY in blocks of 20,000 rows."""
    import psycopg

    rng = random.Random(seed)
    sentences = _sentences(rng, 3000)
    # Pools of texts picked by a multiplicative hash of the row id: varied rows without per-row randomness.
    questions = [" ".join(rng.choices(sentences, k=rng.randint(1, 3))) for _ in range(4099)]
    answers = [
        "\\n\\n".join(" ".join(rng.choices(sentences, k=rng.randint(2, 5))) for _ in range(rng.randint(1, 3)))
        for _ in range(8191)
    ]
    n_items = n_judgments // 2
    step = 20_000
    with psycopg.connect(url) as conn:
        cur = conn.cursor()
        # Ids are given explicitly and consistent by construction: skip the per-row foreign key triggers, and
        # build the secondary indexes once at the end instead of row by row.
        cur.execute("SET session_replication_role = replica")
        cur.execute(
            """SELECT pg_get_indexdef(i.indexrelid), i.indexrelid::regclass::text
            FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY(%s) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
            [list(COLUMNS)],
        )
        indexes = cur.fetchall()
        for _, index in indexes:
            cur.execute(f"DROP INDEX {index}")
        cur.execute(
            "INSERT INTO endpoints_modelendpoint (id, created_at, updated_at, name, base_url, model, "
            "api_key_env, timeout_s, max_concurrency, enabled) "
            "VALUES (1, %s, %s, 'bench', 'http://127.0.0.1:9/v1', 'bench-model', '', 60, 4, true)",
            (NOW, NOW),
        )
        for k, temperature in enumerate((0.2, 0.7, 1.0, 1.2), start=1):
            cur.execute(
                "INSERT INTO endpoints_samplingconfig (id, created_at, updated_at, label, temperature, "
                "top_p, max_tokens, system_prompt, seed, extra_params, enabled, endpoint_id) "
                "VALUES (%s, %s, %s, %s, %s, 0.95, 1024, %s, %s, '{}', true, 1)",
                (
                    k,
                    NOW,
                    NOW,
                    f"cfg-{k}",
                    temperature,
                    "You are a helpful assistant." if k % 2 else "",
                    1 if k == 1 else None,
                ),
            )
        _copy_in(
            cur,
            "accounts_user",
            [
                f"{u}\t!\tf\tuser{u}\t\t\t\tf\tt\t{NOW}\thuman\tf\tann_{u:012x}\n"
                for u in range(1, N_USERS + 1)
            ],
        )
        _copy_in(
            cur,
            "batches_batch",
            [
                f"{b}\t{NOW}\t{NOW}\tBench batch {b}\t\thelpfulness\tpairwise\t2\t2\timported\t"
                f"Be helpful.\t{1 + b % 2}\t30\t0\topen\tf\t5\tmajority\t0.6\t0.7\t10\n"
                for b in range(1, N_BATCHES + 1)
            ],
        )
        for start in range(1, n_items + 1, step):
            items, responses = [], []
            for i in range(start, min(start + step, n_items + 1)):
                batch = 1 + (i - 1) * N_BATCHES // n_items
                h = (i * 2654435761) & 0xFFFFFFFF
                question = questions[h % 4099]
                if i % 10 == 0:
                    conversation = (
                        f'[{{"role": "user", "content": "{question}"}}, '
                        f'{{"role": "assistant", "content": "{sentences[h % 3000]}"}}, '
                        f'{{"role": "user", "content": "{sentences[(h >> 7) % 3000]}"}}]'
                    )
                else:
                    conversation = f'[{{"role": "user", "content": "{question}"}}]'
                items.append(
                    f"{i}\t{conversation}\timported\t\t{i:064x}\t{{}}\tf\t\\N\t\\N\t0\tready\t2\t2\t{NOW}\t{batch}\t\\N\n"
                )
                for slot in (0, 1):
                    text = answers[(h >> (slot * 3)) % 8191]
                    rid = 2 * i - 1 + slot
                    config = 1 + (i + slot) % N_CONFIGS
                    responses.append(
                        f"{rid}\t{slot}\tmodel-{config}\t{text}\t\tok\t\t1\t\\N\t\\N\t\\N\t{NOW}\t"
                        f"00000000-0000-0000-0000-{rid:012x}\t{i}\t{config}\n"
                    )
            _copy_in(cur, "batches_item", items)
            _copy_in(cur, "batches_response", responses)
        for start in range(1, n_judgments + 1, step):
            assignments, judgments = [], []
            for j in range(start, min(start + step, n_judgments + 1)):
                i = (j + 1) // 2
                batch = 1 + (i - 1) * N_BATCHES // n_items
                user = 1 + (i * 7 + (j % 2) * 150) % N_USERS  # the two judgments of an item: two annotators
                first, second = 2 * i - 1, 2 * i
                h = (j * 2654435761) & 0xFFFFFFFF
                shown = (second, first) if h & 1 else (first, second)
                position = (h >> 1) & 1
                chosen, rejected = shown[position], shown[1 - position]
                at = (
                    f"2026-01-{1 + j * 27 // n_judgments:02d} {j % 24:02d}:{j % 60:02d}:{(j // 60) % 60:02d}"
                    f".{j % 1_000_000:06d}+00"
                )
                assignments.append(
                    f"{j}\tsubmitted\t{at}\t2099-01-01 00:00:00+00\t{at}\t[{shown[0]}, {shown[1]}]\t1\t\t\t\t"
                    f"{user}\t{batch}\t{i}\n"
                )
                judgments.append(
                    f"{j}\thelpfulness\tpairwise\t{STRENGTHS[(h >> 2) & 3]}\t\\N\t\\N\t\tf\t{position}\t\t"
                    f"{2000 + (h >> 4) % 88000}\tkey-{j:012d}\t1\t{at}\t{user}\t{j}\t{batch}\t{chosen}\t"
                    f"{i}\t{rejected}\n"
                )
            _copy_in(cur, "assignments_assignment", assignments)
            _copy_in(cur, "judgments_judgment", judgments)
        for definition, _ in indexes:
            cur.execute(definition)
        for table in (
            "accounts_user",
            "batches_batch",
            "batches_item",
            "batches_response",
            "assignments_assignment",
            "judgments_judgment",
            "endpoints_modelendpoint",
            "endpoints_samplingconfig",
        ):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        # Hint bits and statistics now, so that the first measured run does not pay for them.
        conn.execute(f"VACUUM ANALYZE {', '.join(COLUMNS)}")


# --------------------------------------------------------------------------------------------------
# The measured runs, each in its own process
# --------------------------------------------------------------------------------------------------


def child(mode: str, transport: str | None) -> None:
    """Runs in a subprocess with the bench settings; prints one JSON line."""
    import logging
    import resource

    import django

    django.setup()
    # The service logs where the time went (read+build, write, store): pass it on to the parent.
    logging.getLogger("annotate.exports.services").setLevel(logging.INFO)
    from django.db import connection

    from annotate.exports import queries, services
    from annotate.exports.models import ExportJob
    from annotate.exports.spec import parse_export_spec

    if transport == "plain":  # no prefetching thread, for comparison
        real_stream = queries.stream
        queries.stream = lambda query, chunk_rows: real_stream(query, chunk_rows=chunk_rows, prefetch=False)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    spec = parse_export_spec({}, schema="trl_preference")
    started = time.perf_counter()
    cpu = time.process_time()
    result: dict[str, Any] = {"mode": mode}
    if mode in ("copy", "copy_jit_off"):
        query = queries.comparison_query(spec)
        rows = size = 0
        with connection.cursor():
            raw = connection.connection
            if mode == "copy_jit_off":  # the setting the export's own snapshot runs with (queries.snapshot)
                raw.execute("SET jit = off")
            with raw.cursor() as cursor, cursor.copy(f"COPY ({query.sql}) TO STDOUT", query.params) as copy:
                for block in copy:
                    size += len(block)
                    rows += bytes(block).count(b"\n")
        result.update(rows=rows, bytes=size)
    else:
        import pyarrow  # noqa: F401 - loaded before the clock starts in both formats, as a worker has it

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        cpu = time.process_time()
        job = ExportJob.objects.create(spec=spec.to_dict(), schema="trl_preference", format=mode)
        done = services.export_build(job.pk)
        if done is None or done.status != "done":
            raise SystemExit(f"export failed: {done and done.error}")
        result.update(rows=done.row_count, bytes=done.manifest["bytes"], sha256=done.sha256)
    seconds = time.perf_counter() - started
    result.update(
        seconds=round(seconds, 3),
        cpu_seconds=round(time.process_time() - cpu, 3),
        rows_per_s=round(result["rows"] / seconds) if seconds else None,
        rss_before_mb=round(rss_before, 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    print(json.dumps(result))


def run_child(settings: BenchSettings, mode: str, transport: str | None) -> dict[str, Any]:
    args = [PYTHON, str(Path(__file__).resolve()), "--child", mode]
    if transport:
        args += ["--transport", transport]
    proc = subprocess.run(args, cwd=ROOT, env=settings.env, text=True, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    for line in proc.stderr.splitlines():
        if "annotate.exports.services" in line:
            log("  " + line.split("annotate.exports.services ", 1)[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 judgments instead of 1,000,000")
    parser.add_argument("--rows", type=int, help="number of pairwise judgments (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each mode this many times (best kept)")
    parser.add_argument("--transport", choices=["cursor", "plain"], help="plain: no prefetching thread")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    modes = ["copy", "copy_jit_off", "jsonl", "parquet"]
    parser.add_argument("--child", choices=modes, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.transport)
        return

    install_signal_handlers()
    n = args.rows or (100_000 if args.quick else 1_000_000)
    name = f"annotate_bench_export_{os.getpid()}"
    settings: BenchSettings | None = None
    started = time.monotonic()
    try:
        url = create_database(name)
        settings = BenchSettings(url, redis_url=None)
        log(f"database {name}: migrating")
        migrate(settings)
        log(f"loading {n:,} pairwise judgments with COPY")
        t = time.monotonic()
        load(url, n)
        load_seconds = time.monotonic() - t
        log(f"loaded in {load_seconds:.1f}s")

        runs: dict[str, list[dict[str, Any]]] = {"copy": [], "copy_jit_off": [], "jsonl": [], "parquet": []}
        for _ in range(args.repeat):
            for mode in ("copy", "copy_jit_off", "jsonl", "parquet"):
                run = run_child(settings, mode, args.transport)
                log(
                    f"{mode:8s} {run['rows']:>9,} rows {run['seconds']:8.2f}s {run['rows_per_s']:>9,} rows/s "
                    f"cpu {run['cpu_seconds']:.1f}s peak rss {run['peak_rss_mb']:.0f} MB "
                    f"(after imports {run['rss_before_mb']:.0f} MB)"
                )
                runs[mode].append(run)
        best = {mode: min(results, key=lambda r: r["seconds"]) for mode, results in runs.items()}
        for mode in ("copy_jit_off", "jsonl", "parquet"):
            if best[mode]["rows"] != best["copy"]["rows"]:
                raise RuntimeError(
                    f"{mode} wrote {best[mode]['rows']} rows, COPY read {best['copy']['rows']}"
                )
        copy_rate = best["copy"]["rows_per_s"]
        result = {
            "rows": best["copy"]["rows"],
            "judgments": n,
            "load_seconds": round(load_seconds, 1),
            "copy_rows_per_s": copy_rate,
            "jsonl_rows_per_s": best["jsonl"]["rows_per_s"],
            "parquet_rows_per_s": best["parquet"]["rows_per_s"],
            "jsonl_ratio": round(best["jsonl"]["rows_per_s"] / copy_rate, 3),
            "parquet_ratio": round(best["parquet"]["rows_per_s"] / copy_rate, 3),
            # The exports read with JIT off (queries.snapshot); the ratios against a COPY that does too.
            "copy_jit_off_rows_per_s": best["copy_jit_off"]["rows_per_s"],
            "jsonl_ratio_vs_copy_jit_off": round(
                best["jsonl"]["rows_per_s"] / best["copy_jit_off"]["rows_per_s"], 3
            ),
            "parquet_ratio_vs_copy_jit_off": round(
                best["parquet"]["rows_per_s"] / best["copy_jit_off"]["rows_per_s"], 3
            ),
            "peak_rss_mb": max(best["jsonl"]["peak_rss_mb"], best["parquet"]["peak_rss_mb"]),
            "jsonl_peak_rss_mb": best["jsonl"]["peak_rss_mb"],
            "parquet_peak_rss_mb": best["parquet"]["peak_rss_mb"],
            "rss_after_imports_mb": best["parquet"]["rss_before_mb"],
            "jsonl_bytes": best["jsonl"]["bytes"],
            "parquet_bytes": best["parquet"]["bytes"],
            "copy_bytes": best["copy"]["bytes"],
            "seconds": {mode: run["seconds"] for mode, run in best.items()},
            "cpu_seconds": {mode: run["cpu_seconds"] for mode, run in best.items()},
            "transport": args.transport or "cursor",
            "rss_measured_by": "getrusage(RUSAGE_SELF).ru_maxrss of each export subprocess (VmHWM)",
            "load_average": list(os.getloadavg()),
            "targets_met": {
                "jsonl_ratio>=0.6": best["jsonl"]["rows_per_s"] / copy_rate >= 0.6,
                "parquet_ratio>=0.4": best["parquet"]["rows_per_s"] / copy_rate >= 0.4,
                "peak_rss<256MB": max(best["jsonl"]["peak_rss_mb"], best["parquet"]["peak_rss_mb"]) < 256,
            },
            "total_seconds": round(time.monotonic() - started, 1),
        }
        if args.keep:
            result["database"] = name
        emit_result(result)
    finally:
        if not args.keep:
            drop_database(name)
        if settings is not None:
            settings.cleanup()


if __name__ == "__main__":
    main()
