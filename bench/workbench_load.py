#!/usr/bin/env python
"""Load test of the annotator workbench over real HTTP, against gunicorn + PostgreSQL.

    .venv/bin/python bench/workbench_load.py --quick     # < 2 minutes, 100,000-item large batch
    .venv/bin/python bench/workbench_load.py             # full: 1,000,000 items, 60 s phases, config sweep

It builds its own database (annotate_bench_<pid>, bulk-loaded with COPY), runs the app under gunicorn with
production settings (DEBUG=false) on a free 127.0.0.1 port, and drives it with simulated annotators
(one httpx client and cookie jar each). Phases:

  (a) closed loop: 32 annotators judge as fast as the server answers, on the small batch;
  (b) open loop: judgments scheduled at a fixed rate (default 100/s); latency is measured from the
      scheduled time, so a slow server is not hidden by a slower load generator (no coordinated omission);
  (c) claim latency on the large batch vs the small batch (fresh annotators, sequential), continuing
      annotators (submit = judgment + next claim + render), and one annotator with a long history.

Then it checks the assignment invariants in SQL, drops the database and stops gunicorn (also on Ctrl-C or
failure). Progress goes to stderr; the last stdout line is one JSON object (docs/benchmarks.md explains it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import queue
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench.common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.common import (
    ROOT,
    BenchSettings,
    CpuMeter,
    DjangoJob,
    Gunicorn,
    RssSampler,
    create_database,
    database_exists,
    drop_database,
    emit_result,
    install_signal_handlers,
    load_average,
    log,
    migrate,
    python_speed,
    summarize,
    tree_rss_bytes,
)

PASSWORD = "bench-annotator-pass-7"  # every bench user's password (a throw-away database)
STRENGTHS = ("significantly_better", "better", "slightly_better", "negligibly_better_or_unsure")
FETCH = {"X-Requested-With": "fetch"}
ADAPTIVE_RULE_DEFAULT = "majority"  # Batch.adaptive_rule's default (adaptive overlap is off here)
RE_ASSIGNMENT = re.compile(rb'data-assignment="(\d+)"')
RE_RESPONSE = re.compile(rb'data-response-id="(\d+)"')
RE_CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
RE_LOCATION_ASSIGNMENT = re.compile(r"/a/(\d+)/")

# ==================================================================================================
# Data: markdown texts and COPY blocks
# ==================================================================================================

_WORDS_TEXT = (
    "the model answer explains why this approach works better than the alternatives when data is "
    "sparse and noisy so we first check the inputs then compute a running total and return early if "
    "nothing changed because caching helps latency while correctness depends on ordering of updates in "
    "each step users often ask for examples so here is a short one that you can adapt to your own project"
)
WORDS = tuple(_WORDS_TEXT.split())
LANGS = ("python", "javascript", "bash", "sql", "")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    r = rng.random()
    if r < 0.25:
        i = rng.randrange(len(words))
        words[i] = f"**{words[i]}**"
    elif r < 0.4:
        i = rng.randrange(len(words))
        words[i] = f"`{words[i]}()`"
    elif r < 0.5:
        i = rng.randrange(len(words))
        words[i] = f"_{words[i]}_"
    return " ".join(words).capitalize() + "."


def markdown_text(rng: random.Random, lo: int = 300, hi: int = 800) -> str:
    """A model-response-like markdown text of lo..hi characters: paragraphs, lists, headings, code, links."""
    target = rng.randint(lo, hi)
    parts: list[str] = []
    while sum(len(p) + 2 for p in parts) < target:
        kind = rng.random()
        if kind < 0.42:
            parts.append(" ".join(_sentence(rng) for _ in range(rng.randint(1, 3))))
        elif kind < 0.60:
            parts.append("\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 4))))
        elif kind < 0.70:
            parts.append("\n".join(f"{i}. {_sentence(rng)}" for i in range(1, rng.randint(3, 5))))
        elif kind < 0.80:
            parts.append("## " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))).capitalize())
        elif kind < 0.92:
            lang = rng.choice(LANGS)
            body = "\n".join(
                f"{rng.choice(WORDS)}_{i} = {rng.choice(WORDS)}({rng.randint(0, 99)})  # {rng.choice(WORDS)}"
                for i in range(rng.randint(2, 6))
            )
            parts.append(f"```{lang}\n{body}\n```")
        else:
            w = rng.choice(WORDS)
            parts.append(f"See [{w} docs](https://example.org/{w}) and <https://example.com/{w}> for more.")
    while len("\n\n".join(parts)) > hi and len(parts) > 1:
        parts.pop()
    return "\n\n".join(parts)


def prompt_text(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(1, 3)))[:-1] + "?"


def copy_escape(text: str) -> str:
    """Escape a value for PostgreSQL's COPY text format."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


@dataclass
class TextPool:
    """Pre-generated, pre-escaped texts; every item and response gets a unique suffix/prefix, so render
    caches in the app never see the same text twice (as with real model outputs)."""

    responses: list[str]  # COPY-escaped markdown
    prompts_json: list[str]  # COPY-escaped JSON string bodies (without quotes)
    answers_json: list[str]
    # COPY-escaped HTML of each response text as the app renders it (annotate.core.rendering); empty with
    # --cold-render. The unique "(ref ...)" paragraph appended per row renders on its own (checked).
    responses_html: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, seed: int = 7, n: int = 1024) -> TextPool:
        rng = random.Random(seed)
        responses = [copy_escape(markdown_text(rng)) for _ in range(n)]
        prompts = [copy_escape(json.dumps(prompt_text(rng))[1:-1]) for _ in range(n)]
        answers = [copy_escape(json.dumps(markdown_text(rng, 150, 400))[1:-1]) for _ in range(n // 4)]
        return cls(responses, prompts, answers)

    def prerender(self, seed: int = 7) -> None:
        """Render every response text once, as the import's background task would have done."""
        from annotate.core.rendering import render_markdown

        rng = random.Random(seed)
        raw = [markdown_text(rng) for _ in range(len(self.responses))]  # the same draws as build()
        self.responses_html = [copy_escape(str(render_markdown(text))) for text in raw]


def iso(dt: datetime) -> str:
    return dt.isoformat()


JUDGMENT_COLUMNS = (
    "id, track, mode, strength, ranking, safety_labels, safety_bin, flagged, position_chosen, rationale, "
    "time_spent_ms, idempotency_key, guidelines_version, created_at, annotator_id, assignment_id, batch_id, "
    "chosen_id, item_id, rejected_id"
)
CROWD = 2  # annotators besides the long-history one who judged the large batch's first items (overlap 3)
ITEM_COLUMNS = (
    "id, batch_id, conversation, source, external_id, content_hash, metadata, is_gold, gold_expected, "
    "dialogue_id, turn_index, status, wanted, taken, created_at, created_by_id"
)
RESPONSE_COLUMNS = (
    "id, item_id, slot, model_name, content, content_html, status, error, attempts, latency_ms, "
    "prompt_tokens, completion_tokens, generated_at, request_id, sampling_config_id"
)


def item_blocks(
    pool: TextPool,
    batch_id: int,
    first_id: int,
    count: int,
    overlap: int,
    taken_upto: int,
    now: str,
    chunk: int = 5000,
) -> Iterator[str]:
    """COPY lines for items first_id..first_id+count-1; items with id < taken_upto are full (the history
    annotator and the CROWD others have them)."""
    prompts, answers = pool.prompts_json, pool.answers_json
    np, na = len(prompts), len(answers)
    for start in range(first_id, first_id + count, chunk):
        lines = []
        for i in range(start, min(start + chunk, first_id + count)):
            p = prompts[(i * 7) % np]
            if i % 5 == 0:  # one in five is a multi-turn conversation
                conv = (
                    f'[{{"role": "user", "content": "Q{i}: {p}"}}, '
                    f'{{"role": "assistant", "content": "{answers[i % na]}"}}, '
                    f'{{"role": "user", "content": "Follow-up {i}: {prompts[(i * 13) % np]}"}}]'
                )
            else:
                conv = f'[{{"role": "user", "content": "Q{i}: {p}"}}]'
            taken = 1 + CROWD if i < taken_upto else 0
            lines.append(
                f"{i}\t{batch_id}\t{conv}\timported\tbench-{i}\t{batch_id:08x}{i:056x}\t{{}}\tf\t\\N\t\\N\t0\t"
                f"ready\t{overlap}\t{taken}\t{now}\t\\N\n"
            )
        yield "".join(lines)


def response_blocks(
    pool: TextPool, first_item: int, count: int, now: str, chunk: int = 5000
) -> Iterator[str]:
    """COPY lines for the two responses of each item; response ids are 2*item_id-1 and 2*item_id."""
    texts, htmls = pool.responses, pool.responses_html
    nt = len(texts)
    for start in range(first_item, first_item + count, chunk):
        lines = []
        for i in range(start, min(start + chunk, first_item + count)):
            for slot in (0, 1):
                rid = 2 * i - 1 + slot
                n = (i * 3 + slot * 11) % nt
                html = f"{htmls[n]}<p>(ref {i}-{slot})</p>\\n" if htmls else ""
                lines.append(
                    f"{rid}\t{i}\t{slot}\tmodel-{slot}\t{texts[n]}"
                    f"\\n\\n(ref {i}-{slot})\t{html}"
                    f"\tok\t\t1\t\\N\t\\N\t\\N\t{now}\t00000000-0000-4000-8000-{rid:012x}\t\\N\n"
                )
        yield "".join(lines)


def copy_into(conn: psycopg.Connection, table: str, columns: str, blocks: Iterator[str]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
        for block in blocks:
            cp.write(block)


@dataclass
class Dataset:
    small_batch: int = 0
    large_batch: int = 0
    small_items: int = 0
    large_items: int = 0
    large_first_item: int = 0
    main_users: list[int] = field(default_factory=list)
    fresh_small: list[int] = field(default_factory=list)
    fresh_large: list[int] = field(default_factory=list)
    fresh_small_after: list[int] = field(default_factory=list)
    fresh_large_after: list[int] = field(default_factory=list)
    cont_small: int = 0
    cont_large: int = 0
    history_user: int = 0
    probe_small: int = 0
    probe_large: int = 0
    crowd: list[int] = field(default_factory=list)
    history: int = 0
    usernames: dict[int, str] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)

    def all_users(self) -> list[int]:
        return sorted(self.usernames)


# Indexes kept (and so grown row by row, as in production) while loading: the claim's partial indexes.
# A freshly built index is denser than one grown by inserts, and the planner's choice between it and the
# primary key depends on that (see docs/benchmarks.md), so these two must look like the real ones.
KEEP_INDEXES = ("item_open_for_claim", "item_gold_open_for_claim")


def drop_secondary_indexes(
    conn: psycopg.Connection, tables: tuple[str, ...], keep: tuple[str, ...] = ()
) -> list[str]:
    """Drop every index of `tables` but the primary keys and those named in `keep` (unique constraints
    included); returns the DDL that recreates them exactly as the migrations made them."""
    rows = conn.execute(
        """SELECT t.relname, ic.relname, pg_get_indexdef(i.indexrelid), con.conname,
                  pg_get_constraintdef(con.oid)
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
           LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
           WHERE t.relname = ANY(%s) AND NOT i.indisprimary""",
        (list(tables),),
    ).fetchall()
    recreate = []
    for table, index, indexdef, conname, condef in rows:
        if index in keep:
            continue
        if conname:
            conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{conname}"')
            recreate.append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{conname}" {condef}')
        else:
            conn.execute(f'DROP INDEX "{index}"')
            recreate.append(indexdef)
    return recreate


def run_ddl_parallel(db_url: str, statements: list[str], connections: int) -> None:
    """Run independent DDL statements (index builds) on a few connections at once."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for statement in statements:
        todo.put(statement)
    errors: list[BaseException] = []

    def run() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            while True:
                try:
                    statement = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    conn.execute(statement)
                except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    errors.append(exc)
                    return

    run_threads(run, [() for _ in range(max(1, connections))])
    if errors:
        raise RuntimeError(f"DDL failed: {errors[0]}")


Task = tuple[str, int, int, int, int]  # (table kind, batch id, first item id, item count, taken upto)


def _copy_tasks(db_url: str, pool: TextPool, tasks: list[Task], now: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        for kind, batch_id, first, count, taken_upto in tasks:
            if kind == "items":
                blocks = item_blocks(pool, batch_id, first, count, 3, taken_upto, now)
                copy_into(conn, "batches_item", ITEM_COLUMNS, blocks)
            else:
                copy_into(
                    conn, "batches_response", RESPONSE_COLUMNS, response_blocks(pool, first, count, now)
                )
        conn.commit()


def start_parallel_copy(
    db_url: str, pool: TextPool, segments: list[tuple[int, int, int, int]], now: str, processes: int
) -> list[multiprocessing.process.BaseProcess]:
    """COPY items and responses in forked processes. All items go through one process in id order, so
    that the table's physical order follows the ids as after a real import: the planner's choice of index
    for the claim depends on that correlation. Responses (3.5 times the bytes) are split across all."""
    n = max(1, processes)
    shares: list[list[Task]] = [[] for _ in range(n)]
    shares[0] = [
        ("items", batch_id, first, count, taken_upto) for batch_id, first, count, taken_upto in segments
    ]
    # An item row costs about 0.3 of a response pair to load: the items' process gets fewer responses.
    total = sum(seg[2] for seg in segments)
    per_process = 1.3 * total / n
    quota = [max(0.0, per_process - 0.3 * total)] + [per_process] * (n - 1)
    scale = total / sum(quota)
    quota = [q * scale for q in quota]
    share, used = 0, 0.0
    for batch_id, first, count, taken_upto in segments:
        start, end = first, first + count
        while start < end:
            room = round(quota[share] - used) if share < n - 1 else end - start
            if room <= 0:
                share, used = share + 1, 0.0
                continue
            take = min(room, end - start)
            shares[share].append(("responses", batch_id, start, take, taken_upto))
            start += take
            used += take
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_copy_tasks, args=(db_url, pool, tasks, now), daemon=True)
        for tasks in shares
        if tasks
    ]
    for proc in procs:
        proc.start()
    return procs


def join_processes(procs: list[multiprocessing.process.BaseProcess]) -> None:
    try:
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    failed = [proc.exitcode for proc in procs if proc.exitcode != 0]
    if failed:
        raise RuntimeError(f"a loader process failed (exit codes {failed})")


def load_data(
    db_url: str,
    *,
    small: int,
    large: int,
    annotators: int,
    fresh: int,
    history: int,
    workers: int = 2,
    on_users_committed: Callable[[Dataset], None] | None = None,
    cold_render: bool = False,
) -> Dataset:
    """Bulk-load two batches, their items and responses, the users and the long history, with COPY."""
    ds = Dataset(small_items=small, large_items=large, history=history)
    now_dt = datetime.now(UTC)
    now = iso(now_dt)
    t0 = time.monotonic()
    pool = TextPool.build()
    if not cold_render:
        pool.prerender()
    with psycopg.connect(db_url) as conn:
        # A private throw-away database: skip per-row FK triggers and commit flushes while loading.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        guidelines = "# Guidelines\n\nPick the more helpful response. Judge accuracy first, then clarity."
        batch_ids = []
        for name, overlap in (("bench small", 3), ("bench large", 3)):
            row = conn.execute(
                """INSERT INTO batches_batch (created_at, updated_at, name, description, track, mode,
                   responses_per_item, overlap, prompt_source, guidelines, guidelines_version, lease_minutes,
                   gold_rate, status, opened_at, closed_at, created_by_id, adaptive_overlap, overlap_ceiling,
                   adaptive_rule, flag_min_agreement, flag_min_gold_accuracy, flag_min_evidence)
                   VALUES (%s, %s, %s, '', 'helpfulness', 'pairwise', 2, %s, 'imported', %s, 1, 30, 0, 'open',
                   %s, NULL, NULL, false, 5, %s, 0.6, 0.7, 10) RETURNING id""",
                (now_dt, now_dt, name, overlap, guidelines, now_dt, ADAPTIVE_RULE_DEFAULT),
            ).fetchone()
            batch_ids.append(row[0])
        ds.small_batch, ds.large_batch = batch_ids

        # Users: the load-phase annotators, fresh annotators for the claim measurement (before and after the
        # load phases, per batch), one continuing annotator per batch, and the one with a long history.
        uid = 0

        def new_users(n: int, prefix: str) -> list[int]:
            nonlocal uid
            ids = []
            for k in range(n):
                uid += 1
                ds.usernames[uid] = f"{prefix}{k}"
                ids.append(uid)
            return ids

        ds.main_users = new_users(annotators, "bench_ann")
        ds.fresh_small = new_users(fresh, "bench_fs")
        ds.fresh_large = new_users(fresh, "bench_fl")
        ds.fresh_small_after = new_users(fresh, "bench_fsa")
        ds.fresh_large_after = new_users(fresh, "bench_fla")
        ds.cont_small, ds.cont_large, ds.history_user, ds.probe_small, ds.probe_large = new_users(
            5, "bench_x"
        )
        ds.crowd = new_users(CROWD, "bench_crowd")
        copy_into(
            conn,
            "accounts_user",
            "id, password, last_login, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined, kind, is_exporter, pseudonym",
            iter(
                [
                    "".join(
                        f"{u}\t!\t\\N\tf\t{name}\t\t\t{name}@example.test\tf\tt\t{now}\thuman\tf\tann_bench{u:012x}\n"
                        for u, name in ds.usernames.items()
                    )
                ]
            ),
        )
        copy_into(
            conn,
            "accounts_qualification",
            "user_id, track, granted_at, consented_at, revoked_at, granted_by_id",
            iter(["".join(f"{u}\thelpfulness\t{now}\t\\N\t\\N\t\\N\n" for u in ds.usernames)]),
        )
        copy_into(
            conn,
            "assignments_guidelinesseen",
            "annotator_id, batch_id, version, seen_at",
            iter(["".join(f"{u}\t{b}\t1\t{now}\n" for u in ds.usernames for b in batch_ids)]),
        )
        conn.commit()
        ds.load_seconds["users"] = round(time.monotonic() - t0, 2)
        if on_users_committed:
            on_users_committed(ds)  # e.g. set passwords and create sessions while the rest loads

        # Items and responses. Ids are assigned here (identity columns are GENERATED BY DEFAULT), so the
        # responses need no read-back; the sequences are moved past them afterwards. The secondary indexes
        # of the big tables are dropped while loading and built afterwards (a sorted build is several times
        # faster than inserting row by row), and the load runs in parallel processes.
        t1 = time.monotonic()
        rebuild = drop_secondary_indexes(
            conn,
            ("batches_item", "batches_response", "assignments_assignment", "judgments_judgment"),
            keep=KEEP_INDEXES,
        )
        conn.commit()
        ds.large_first_item = small + 1
        hist_end = ds.large_first_item + history
        segments = [(ds.small_batch, 1, small, 0), (ds.large_batch, ds.large_first_item, large, hist_end)]
        procs = start_parallel_copy(db_url, pool, segments, now, processes=workers)

        # The long history: `history` submitted assignments (with their judgments) of one annotator on the
        # first items of the large batch, and of CROWD other annotators on the same items, which are so full
        # (taken = wanted = 3): the large batch is one in progress, its first `history` items done.
        t3 = time.monotonic()
        base = now_dt - timedelta(days=20)

        # The same timestamps for every annotator of the history (formatting them is most of the work).
        leased = [iso(base + timedelta(seconds=20 * k)) for k in range(history)]
        expires = [iso(base + timedelta(seconds=20 * k + 1800)) for k in range(history)]
        finished = [iso(base + timedelta(seconds=20 * k + 15)) for k in range(history)]

        def history_rows(annotator: int, first_id: int) -> Iterator[str]:
            for start in range(0, history, 10000):
                lines = []
                for k in range(start, min(start + 10000, history)):
                    item = ds.large_first_item + k
                    lines.append(
                        f"{first_id + k}\tsubmitted\t{leased[k]}\t{expires[k]}\t{finished[k]}\t"
                        f"[{2 * item - 1}, {2 * item}]\t1\t\t\t\t{annotator}\t{ds.large_batch}\t{item}\n"
                    )
                yield "".join(lines)

        def judgment_rows(annotator: int, first_id: int) -> Iterator[str]:
            for start in range(0, history, 10000):
                lines = []
                for k in range(start, min(start + 10000, history)):
                    item = ds.large_first_item + k
                    lines.append(
                        f"{first_id + k}\thelpfulness\tpairwise\tbetter\t\\N\t\\N\t\tf\t0\t\t15000\t"
                        f"hist-{k:010d}\t1\t{finished[k]}\t{annotator}\t{first_id + k}\t"
                        f"{ds.large_batch}\t{2 * item - 1}\t{item}\t{2 * item}\n"
                    )
                yield "".join(lines)

        if history:
            for n, annotator in enumerate([ds.history_user, *ds.crowd]):
                first_id = 1 + n * history
                copy_into(
                    conn,
                    "assignments_assignment",
                    "id, status, leased_at, expires_at, finished_at, positions, guidelines_version, "
                    "skip_reason, flag, flag_note, annotator_id, batch_id, item_id",
                    history_rows(annotator, first_id),
                )
                copy_into(
                    conn,
                    "judgments_judgment",
                    JUDGMENT_COLUMNS,
                    judgment_rows(annotator, first_id),
                )
                conn.execute(  # the submit path keeps these counters; the history was judged days ago
                    "INSERT INTO assignments_annotatorprogress (annotator_id, batch_id, total, day, today) "
                    "VALUES (%s, %s, %s, %s, 0)",
                    (annotator, ds.large_batch, history, (now_dt - timedelta(days=20)).date()),
                )
        conn.commit()
        ds.load_seconds["history"] = round(time.monotonic() - t3, 2)
        join_processes(procs)
        ds.load_seconds["items_and_responses"] = round(time.monotonic() - t1, 2)
        for table in (
            "accounts_user",
            "accounts_qualification",
            "assignments_guidelinesseen",
            "batches_item",
            "batches_response",
            "assignments_assignment",
            "judgments_judgment",
        ):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            )
        conn.commit()

    t5 = time.monotonic()
    run_ddl_parallel(db_url, rebuild, connections=workers)
    ds.load_seconds["indexes"] = round(time.monotonic() - t5, 2)

    # Settle the tables as a running system would be (statistics, visibility map), so that autovacuum does
    # not start in the middle of a measurement.
    t4 = time.monotonic()
    run_ddl_parallel(
        db_url,
        [
            f"VACUUM (ANALYZE) {table}"
            for table in (
                "batches_response",
                "batches_item",
                "accounts_user",
                "accounts_qualification",
                "assignments_guidelinesseen",
                "assignments_assignment",
                "judgments_judgment",
                "batches_batch",
            )
        ],
        connections=workers,
    )
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")  # write the load out now, not during the first measurement
    except psycopg.errors.InsufficientPrivilege:
        log("no CHECKPOINT (needs superuser or pg_checkpoint): the first phase may pay for the load's writes")
    ds.load_seconds["vacuum_analyze_checkpoint"] = round(time.monotonic() - t4, 2)
    ds.load_seconds["total"] = round(time.monotonic() - t0, 2)
    return ds


SESSIONS_SNIPPET = r"""
import json, sys
from datetime import timedelta
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from annotate.accounts.models import User

req = json.load(sys.stdin)
User.objects.filter(pk__in=req["all"]).update(password=make_password(req["password"]))
engine = import_module(settings.SESSION_ENGINE)
backend = settings.AUTHENTICATION_BACKENDS[0]
keys, rows = {}, []
with transaction.atomic():
    for user in User.objects.filter(pk__in=req["sessions"]):
        data = {SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: backend,
                HASH_SESSION_KEY: user.get_session_auth_hash()}
        store = engine.SessionStore()
        if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
            # What store.create() would write, in one INSERT for all users.
            key = store._get_new_session_key()
            expire = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
            rows.append(store.model(session_key=key, session_data=store.encode(data), expire_date=expire))
        else:
            store.update(data)
            store.create()
            key = store.session_key
        keys[user.pk] = key
    if rows:
        rows[0].__class__.objects.bulk_create(rows, batch_size=1000)
print(json.dumps({"sessions": keys, "session_cookie": settings.SESSION_COOKIE_NAME}))
"""


# ==================================================================================================
# Simulated annotators
# ==================================================================================================


class Recorder:
    """Latencies per request kind (ms), error counts, thread-safe."""

    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def add(self, kind: str, ms: float) -> None:
        with self._lock:
            self.lat[kind].append(ms)

    def error(self, what: str) -> None:
        with self._lock:
            self.errors[what] += 1

    def summary(self) -> dict[str, Any]:
        return {kind: summarize(values) for kind, values in sorted(self.lat.items())}


class Annotator:
    """One browser: its own connection pool and cookie jar, the item it holds, and the form's tokens."""

    def __init__(
        self, base_url: str, user_id: int, username: str, session: tuple[str, str] | None = None
    ) -> None:
        self.user_id, self.username = user_id, username
        self.client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(120.0),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        if session:
            self.client.cookies.set(session[0], session[1], domain="127.0.0.1", path="/")
        self.assignment: int | None = None
        self.responses: list[int] = []
        self.csrf = ""
        self.judged = 0
        self.rng = random.Random(user_id)

    def close(self) -> None:
        self.client.close()

    # -- sign-in -----------------------------------------------------------------------------------
    def login(self) -> float:
        t0 = time.perf_counter()
        page = self.client.get("/accounts/login/")
        m = RE_CSRF.search(page.content)
        if page.status_code != 200 or not m:
            raise RuntimeError(f"login page: HTTP {page.status_code}")
        r = self.client.post(
            "/accounts/login/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": m.group(1).decode(),
            },
        )
        if r.status_code != 302:
            raise RuntimeError(f"login of {self.username}: HTTP {r.status_code} {r.text[:200]}")
        return (time.perf_counter() - t0) * 1000

    # -- the item HTML -----------------------------------------------------------------------------
    def _take(self, body: bytes) -> bool:
        m = RE_ASSIGNMENT.search(body)
        if not m:
            self.assignment, self.responses = None, []
            return False
        self.assignment = int(m.group(1))
        self.responses = list(dict.fromkeys(int(x) for x in RE_RESPONSE.findall(body)))
        c = RE_CSRF.search(body)
        if c:
            self.csrf = c.group(1).decode()
        return True

    def claim(self, batch_id: int, rec: Recorder | None, kind: str = "claim") -> bool:
        """GET /b/<id>/ as our script does it (fetch header): claim + the item's HTML."""
        t0 = time.perf_counter()
        r = self.client.get(f"/b/{batch_id}/", headers=FETCH)
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            if rec:
                rec.error(f"{kind}_http_{r.status_code}")
            return False
        if rec:
            rec.add(kind, ms)
        return self._take(r.content)

    def claim_redirect(self, batch_id: int) -> tuple[float, int | None]:
        """GET /b/<id>/ as a plain browser navigation: the claim alone, answered with a redirect."""
        t0 = time.perf_counter()
        r = self.client.get(f"/b/{batch_id}/")
        ms = (time.perf_counter() - t0) * 1000
        m = RE_LOCATION_ASSIGNMENT.search(r.headers.get("location", "")) if r.status_code == 302 else None
        return ms, (int(m.group(1)) if m else None)

    def page(self, rec: Recorder | None, started: float | None = None, kind: str = "page") -> bool:
        """GET /a/<id>/: the full item page (a reload, or arriving from a link)."""
        t0 = time.perf_counter() if started is None else started
        r = self.client.get(f"/a/{self.assignment}/")
        ms = (time.perf_counter() - t0) * 1000
        ok = r.status_code == 200 and RE_ASSIGNMENT.search(r.content) is not None
        if rec:
            if ok:
                rec.add(kind, ms)
            else:
                rec.error(f"{kind}_http_{r.status_code}")
        if ok:
            self._take(r.content)
        return ok

    def submit(self, rec: Recorder | None, started: float | None = None, kind: str = "submit") -> bool:
        """POST the judgment with the fetch header; the answer is the next item's HTML."""
        if self.assignment is None or len(self.responses) < 2:
            return False
        data = {
            "idempotency_key": uuid.uuid4().hex,
            "chosen": str(self.rng.choice(self.responses)),
            "strength": self.rng.choice(STRENGTHS),
            "csrfmiddlewaretoken": self.csrf,
            "time_spent_ms": str(self.rng.randint(5000, 90000)),
        }
        t0 = time.perf_counter() if started is None else started
        r = self.client.post(f"/a/{self.assignment}/submit/", data=data, headers=FETCH)
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200 or "x-judgment-id" not in r.headers:
            if rec:
                rec.error(f"{kind}_http_{r.status_code}")
            self.assignment = None
            return False
        if rec:
            rec.add(kind, ms)
        self.judged += 1
        self._take(r.content)
        return True


def make_annotators(
    base_url: str, ds: Dataset, user_ids: list[int], sessions: dict[int, str], cookie: str
) -> list[Annotator]:
    return [
        Annotator(base_url, u, ds.usernames[u], (cookie, sessions[u]) if u in sessions else None)
        for u in user_ids
    ]


STOPPING = threading.Event()  # set while cleaning up: load threads may then fail quietly


def _quiet_when_stopping(args: threading.ExceptHookArgs) -> None:
    if not STOPPING.is_set():
        threading.__excepthook__(args)


threading.excepthook = _quiet_when_stopping


def run_threads(target: Callable[..., None], args_list: list[tuple[Any, ...]]) -> None:
    threads = [threading.Thread(target=target, args=a, daemon=True) for a in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# ==================================================================================================
# Phases
# ==================================================================================================


def closed_loop(
    anns: list[Annotator],
    batch_id: int,
    duration: float,
    warmup: float,
    page_every: int,
    rec: Recorder,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """Every annotator judges as fast as the server answers for `duration` seconds (after `warmup`)."""
    for_claims = [a for a in anns if a.assignment is None]
    run_threads(lambda a: a.claim(batch_id, rec), [(a,) for a in for_claims])
    start = time.perf_counter() + warmup
    end = start + duration
    counted = [0] * len(anns)
    cpu: dict[str, Any] = {}
    if meter:
        threading.Thread(target=_meter_window, args=(meter, start, end, cpu), daemon=True).start()

    def loop(idx: int, a: Annotator) -> None:
        n = 0
        while True:
            now = time.perf_counter()
            if now >= end:
                return
            measuring = now >= start
            r = rec if measuring else None
            if a.assignment is None and not a.claim(batch_id, r):
                time.sleep(0.05)
                continue
            if page_every and n % page_every == page_every - 1:
                a.page(r)
            ok = a.submit(r)
            n += 1
            if ok and measuring and time.perf_counter() <= end:
                counted[idx] += 1

    run_threads(loop, list(enumerate(anns)))
    total = sum(counted)
    out = {"judgments": total, "duration_s": duration, "judgments_per_s": round(total / duration, 1)}
    if meter:
        deadline = time.monotonic() + max(5.0, end - time.perf_counter() + 5.0)
        while "wall_s" not in cpu and time.monotonic() < deadline:
            time.sleep(0.05)
        out["cpu"] = per_judgment(cpu, total) if cpu else None
    return out


def _meter_window(meter: CpuMeter, start: float, end: float, into: dict[str, Any]) -> None:
    """Measure CPU over [start, end] (perf_counter times) from a helper thread."""
    time.sleep(max(0.0, start - time.perf_counter()))
    meter.start()
    time.sleep(max(0.0, end - time.perf_counter()))
    into.update(meter.stop())


def open_loop(
    anns: list[Annotator],
    batch_id: int,
    rate: float,
    duration: float,
    page_every: int,
    rec: Recorder,
    grace: float = 10.0,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """Judgments scheduled every 1/rate seconds whatever the response times; any free annotator takes the
    next one. Latencies are from the scheduled time (queueing included)."""
    run_threads(lambda a: a.claim(batch_id, None), [(a,) for a in anns if a.assignment is None])
    jobs: queue.SimpleQueue[float | None] = queue.SimpleQueue()
    n_jobs = int(rate * duration)
    start = time.perf_counter() + 0.2
    stop_at = start + duration + grace
    done = [0]
    late: list[float] = []
    dropped = [0]
    lock = threading.Lock()
    last_done = [start]
    done_times: list[float] = []

    def dispatcher() -> None:
        for k in range(n_jobs):
            t = start + k / rate
            delay = t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            jobs.put(t)
        for _ in anns:
            jobs.put(None)

    def worker(a: Annotator) -> None:
        n = 0
        while True:
            sched = jobs.get()
            if sched is None:
                return
            begin = time.perf_counter()
            if begin > stop_at:  # the server fell too far behind: count the rest as not done
                with lock:
                    dropped[0] += 1
                continue
            with lock:
                late.append((begin - sched) * 1000)
            if a.assignment is None and not a.claim(batch_id, rec, kind="claim"):
                rec.error("open_loop_no_item")
                continue
            t_submit = sched
            if page_every and n % page_every == page_every - 1:
                a.page(rec, started=sched)
                t_submit = time.perf_counter()
            ok = a.submit(rec, started=t_submit)
            n += 1
            finished = time.perf_counter()
            if ok:
                rec.add("overall", (finished - sched) * 1000)
                with lock:
                    done[0] += 1
                    done_times.append(finished)
                    last_done[0] = max(last_done[0], finished)

    cpu: dict[str, Any] = {}
    if meter:
        threading.Thread(
            target=_meter_window, args=(meter, start, start + duration, cpu), daemon=True
        ).start()
    d = threading.Thread(target=dispatcher, daemon=True)
    d.start()
    run_threads(worker, [(a,) for a in anns])
    d.join()
    span = max(last_done[0] - start, duration)
    in_window = sum(1 for t in done_times if t <= start + duration)
    return {
        "cpu": per_judgment(cpu, in_window) if cpu else None,
        "target_rate_per_s": rate,
        "scheduled": n_jobs,
        "completed": done[0],
        "dropped_after_grace": dropped[0],
        "achieved_rate_per_s": round(done[0] / span, 1),
        "span_s": round(span, 2),
        "start_delay": summarize(late),
    }


def per_judgment(cpu: dict[str, Any], judgments: int) -> dict[str, Any]:
    """CPU milliseconds per judgment (page views included) of the app, PostgreSQL and the load generator:
    unlike latencies these hardly change when other work shares the machine, and 1000 * cores divided by
    (app + database ms) is the throughput the machine could reach with nothing else running."""
    if judgments:
        for key in ("server", "postgres", "loadgen"):
            cpu[f"{key}_cpu_ms_per_judgment"] = round(1000 * cpu[f"{key}_cpu_s"] / judgments, 2)
        busy = cpu["server_cpu_s"] + cpu["postgres_cpu_s"]
        cpu["cpu_bound_judgments_per_s"] = round(cpu["cores"] * judgments / busy, 1) if busy else None
    return cpu


def claim_series(
    base_url: str,
    ds: Dataset,
    sessions: dict[int, str],
    cookie: str,
    small_users: list[int],
    large_users: list[int],
) -> dict[str, Any]:
    """Sequential first claims by fresh annotators (plain navigation: claim + redirect, no rendering),
    alternating small and large batch so that drift hits both alike."""
    lat: dict[str, list[float]] = {"small": [], "large": []}
    failures = 0
    for us, ul in zip(small_users, large_users, strict=True):
        for which, user, batch in (("small", us, ds.small_batch), ("large", ul, ds.large_batch)):
            a = Annotator(base_url, user, ds.usernames[user], (cookie, sessions[user]))
            try:
                ms, assignment = a.claim_redirect(batch)
            finally:
                a.close()
            if assignment is None:
                failures += 1
            else:
                lat[which].append(ms)
    out = {k: summarize(v) for k, v in lat.items()}
    out["failures"] = failures
    s, lg = out["small"]["p50_ms"], out["large"]["p50_ms"]
    out["ratio_p50_large_vs_small"] = round(lg / s, 3) if s and lg else None
    s99, l99 = out["small"]["p99_ms"], out["large"]["p99_ms"]
    out["ratio_p99_large_vs_small"] = round(l99 / s99, 3) if s99 and l99 else None
    return out


def submit_series(
    base_url: str, ds: Dataset, sessions: dict[int, str], cookie: str, n: int, meter: CpuMeter | None = None
) -> dict[str, Any]:
    """Sequential claim+submit loops of one continuing annotator per batch (alternating), and of the
    annotator with the long history in the large batch. With one request at a time, the server's CPU per
    submit (`cpu`) is measured without the app competing with itself."""
    rec = Recorder()
    small = Annotator(base_url, ds.cont_small, ds.usernames[ds.cont_small], (cookie, sessions[ds.cont_small]))
    large = Annotator(base_url, ds.cont_large, ds.usernames[ds.cont_large], (cookie, sessions[ds.cont_large]))
    hist = Annotator(
        base_url, ds.history_user, ds.usernames[ds.history_user], (cookie, sessions[ds.history_user])
    )
    try:
        ms, _ = hist.claim_redirect(ds.large_batch)  # the history annotator's first claim (plain navigation)
        rec.add("history_first_claim", ms)
        small.claim(ds.small_batch, rec, "first_claim_render_small")
        large.claim(ds.large_batch, rec, "first_claim_render_large")
        hist.claim(ds.large_batch, rec, "history_claim_render")  # holds the lease now: renew + render
        if meter:
            meter.start()
        for _ in range(n):
            small.submit(rec, kind="submit_small")
            large.submit(rec, kind="submit_large")
            hist.submit(rec, kind="submit_history")
        cpu = meter.stop() if meter else None
        # A page view for each of the three (the history annotator's progress line counts their history).
        for _ in range(max(5, n // 10)):
            small.page(rec, kind="page_small")
            large.page(rec, kind="page_large")
            hist.page(rec, kind="page_history")
    finally:
        for a in (small, large, hist):
            a.close()
    out = rec.summary()
    out["errors"] = dict(rec.errors)
    if cpu:
        submits = sum(len(rec.lat[k]) for k in ("submit_small", "submit_large", "submit_history"))
        if submits:
            cpu["server_cpu_ms_per_submit"] = round(1000 * cpu["server_cpu_s"] / submits, 2)
            cpu["postgres_cpu_ms_per_submit"] = round(1000 * cpu["postgres_cpu_s"] / submits, 2)
        out["cpu"] = cpu

    def ratio(a: str, b: str, key: str = "p50_ms") -> float | None:
        x, y = out.get(a, {}).get(key), out.get(b, {}).get(key)
        return round(x / y, 3) if x and y else None

    out["ratio_p50_submit_large_vs_small"] = ratio("submit_large", "submit_small")
    out["ratio_p50_submit_history_vs_large"] = ratio("submit_history", "submit_large")
    out["ratio_p50_page_history_vs_large"] = ratio("page_history", "page_large")
    return out


# ==================================================================================================
# Checks and figures
# ==================================================================================================

INVARIANTS_SQL = {
    # The CHECK constraint should make this impossible.
    "items_taken_over_wanted": "SELECT count(*) FROM batches_item WHERE taken > wanted",
    "over_assigned_items": """
        SELECT count(*) FROM (
            SELECT a.item_id FROM assignments_assignment a JOIN batches_item i ON i.id = a.item_id
            WHERE a.status IN ('active', 'submitted') GROUP BY a.item_id, i.wanted HAVING count(*) > i.wanted
        ) x""",
    "annotator_twice_on_item": """
        SELECT count(*) FROM (
            SELECT 1 FROM assignments_assignment GROUP BY item_id, annotator_id HAVING count(*) > 1
        ) x""",
    "taken_mismatch_items": """
        SELECT count(*) FROM batches_item i
        LEFT JOIN (SELECT item_id, count(*) AS n FROM assignments_assignment
                   WHERE status IN ('active', 'submitted') GROUP BY item_id) c ON c.item_id = i.id
        WHERE i.taken <> COALESCE(c.n, 0)""",
    "annotators_with_two_active_leases_in_a_batch": """
        SELECT count(*) FROM (
            SELECT 1 FROM assignments_assignment WHERE status = 'active'
            GROUP BY annotator_id, batch_id HAVING count(*) > 1
        ) x""",
    "submitted_without_one_judgment": """
        SELECT count(*) FROM assignments_assignment a
        WHERE a.status = 'submitted'
          AND (SELECT count(*) FROM judgments_judgment j WHERE j.assignment_id = a.id) <> 1""",
    "judgments_of_unsubmitted_assignments": """
        SELECT count(*) FROM judgments_judgment j JOIN assignments_assignment a ON a.id = j.assignment_id
        WHERE a.status <> 'submitted'""",
}


def check_invariants(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        conn.execute("SET statement_timeout = '120s'")
        return {name: int(conn.execute(q).fetchone()[0]) for name, q in INVARIANTS_SQL.items()}


def db_counts(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT status, count(*) FROM assignments_assignment GROUP BY status"""
        ).fetchall()
        out = {f"assignments_{s}": int(n) for s, n in rows}
        out["judgments"] = int(conn.execute("SELECT count(*) FROM judgments_judgment").fetchone()[0])
        out["db_size_mb"] = int(
            conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] // 2**20
        )
        # Updates of item rows cannot be HOT (heap-only) when an indexed column changes; `taken` is in the
        # claim index's predicate, so every claim writes a new entry into each of the item table's indexes.
        for table, upd, hot in conn.execute(
            """SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
               WHERE relname IN ('batches_item', 'assignments_assignment')"""
        ).fetchall():
            out[f"{table}_updates"] = int(upd)
            out[f"{table}_hot_updates"] = int(hot)
        for index, size in conn.execute(
            """SELECT relname, pg_relation_size(oid) FROM pg_class
               WHERE relname IN ('item_open_for_claim', 'batches_item_pkey')"""
        ).fetchall():
            out[f"{index}_kb"] = int(size) // 1024
    return out


RE_STATIC = re.compile(r"""{%\s*static\s+'((?:css|js)/[^']+)'\s*%}""")
RE_JS_IMPORT = re.compile(r"""(?:from|import)\s*['"]\./([\w.-]+\.js)['"]""")


def workbench_asset_files() -> list[Path]:
    """What the item page loads of our own: the CSS and scripts base.html links (htmx, shipped by
    django-htmx, aside) and every module they import, followed through the import graph. Pages that add
    their own files (live prompts, dashboards) do not count against the workbench."""
    static = ROOT / "frontend" / "static"
    linked = RE_STATIC.findall((ROOT / "frontend" / "templates" / "base.html").read_text())
    seen: list[Path] = []
    todo = [static / name for name in linked]
    while todo:
        f = todo.pop()
        if f in seen or not f.exists():
            continue
        seen.append(f)
        if f.suffix == ".js":
            todo.extend(f.parent / name for name in RE_JS_IMPORT.findall(f.read_text()))
    return sorted(seen)


def asset_sizes() -> dict[str, Any]:
    """The workbench page's own JS and CSS (not htmx, which django-htmx ships), raw and gzipped."""
    files = workbench_asset_files()
    per_file = {}
    raw = gz = 0
    for f in files:
        data = f.read_bytes()
        z = len(gzip.compress(data, 9)) if data else 0
        per_file[str(f.relative_to(ROOT))] = {"bytes": len(data), "gzip_bytes": z}
        raw += len(data)
        gz += z
    return {"asset_bytes": raw, "asset_gzip_bytes": gz, "asset_files": per_file}


# ==================================================================================================
# SQL profile of one submit (what the server runs, with EXPLAIN ANALYZE of the claim queries)
# ==================================================================================================

PROFILE_SNIPPET = r"""
import json, re, sys, time, uuid
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from annotate.accounts.models import User
from annotate.assignments.models import Assignment

# Worth a plan in every run: the claim's item scan, the cursor, the progress line, the lease count.
KEY = {
    "claim_item": re.compile(r'FROM "batches_item" WHERE .* FOR UPDATE', re.S),
    "cursor": re.compile(r'SELECT MAX\("assignments_assignment"."item_id"\)'),
    "progress": re.compile(r'AS "total", COUNT'),
    "active_leases": re.compile(r'SELECT COUNT\(\*\) AS "__count" FROM "assignments_assignment"'),
}

def plan_facts(plan):
    idx = re.findall(r"(?:Index Scan|Index Only Scan|Index Scan Backward|Bitmap Index Scan|Seq Scan)"
                     r"(?: Backward)?(?: using (\S+))? on (\S+)", plan)
    removed = sum(int(x) for x in re.findall(r"Rows Removed by Filter: (\d+)", plan))
    ex = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return {"scans": [f"{i or 'seq'} on {t}" for i, t in idx], "rows_removed_by_filter": removed,
            "execution_ms": float(ex.group(1)) if ex else None}

req = json.load(sys.stdin)
out = {}
for label, kind, user_id, batch_id in req["cases"]:
    user = User.objects.get(pk=user_id)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    with transaction.atomic():
        if kind == "submit":
            current = Assignment.objects.filter(annotator=user, batch_id=batch_id, status="active").first()
            mine = Assignment.objects.filter(annotator=user, batch_id=batch_id, status="active")
            if current is None:
                client.get(f"/b/{batch_id}/", HTTP_X_REQUESTED_WITH="fetch")
                current = mine.first()
            data = {"idempotency_key": uuid.uuid4().hex, "chosen": str(current.positions[0]),
                    "strength": "better", "time_spent_ms": "1000"}
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            if kind == "submit":
                resp = client.post(f"/a/{current.pk}/submit/", data, HTTP_X_REQUESTED_WITH="fetch")
            else:  # a first claim, as plain navigation (claim + redirect)
                resp = client.get(f"/b/{batch_id}/")
            wall = (time.perf_counter() - t0) * 1000
        queries = [{"ms": round(float(q["time"]) * 1000, 2), "sql": q["sql"]} for q in ctx.captured_queries]
        explains, key_plans = [], {}
        with connection.cursor() as cur:
            for q in queries:
                s = q["sql"].lstrip().upper()
                if not s.startswith("SELECT") or "DJANGO_SESSION" in s:
                    continue
                names = [name for name, rx in KEY.items() if rx.search(q["sql"])]
                if not (names or req.get("explain")):
                    continue
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + q["sql"])
                plan = "\n".join(r[0] for r in cur.fetchall())
                explains.append({"sql": q["sql"], "plan": plan})
                for name in names:
                    key_plans.setdefault(name, plan_facts(plan))
        transaction.set_rollback(True)
    out[label] = {"status": resp.status_code, "wall_ms": round(wall, 2), "n_queries": len(queries),
                  "sql_ms": round(sum(q["ms"] for q in queries), 2), "queries": queries, "explains": explains,
                  "key_plans": key_plans}
print(json.dumps(out))
"""


def profile_cases(ds: Dataset, first_claims_only: bool = False) -> list[list[Any]]:
    cases = [
        ["first_claim_small_batch", "claim", ds.probe_small, ds.small_batch],
        ["first_claim_large_batch", "claim", ds.probe_large, ds.large_batch],
    ]
    if not first_claims_only:
        cases += [
            ["submit_small_batch", "submit", ds.cont_small, ds.small_batch],
            ["submit_large_batch", "submit", ds.cont_large, ds.large_batch],
            ["submit_large_batch_long_history", "submit", ds.history_user, ds.large_batch],
        ]
    return cases


def start_sql_profile(
    settings: BenchSettings, ds: Dataset, explain: bool, first_claims_only: bool
) -> DjangoJob:
    """Start the profile (below) in a background Django process; nothing it does is committed."""
    request = {"cases": profile_cases(ds, first_claims_only), "explain": explain}
    return settings.start_django(PROFILE_SNIPPET, json.dumps(request))


def sql_profile(
    settings: BenchSettings, ds: Dataset, explain: bool, job: DjangoJob | None = None
) -> dict[str, Any]:
    """What the server runs for one request (in a transaction that is rolled back): query count, and the
    plans of the claim's key queries (which index, how many rows filtered away, execution time)."""
    job = job or start_sql_profile(settings, ds, explain, first_claims_only=False)
    raw = json.loads(job.result())
    summary = {}
    for label, prof in raw.items():
        summary[label] = {
            "status": prof["status"],
            "n_queries": prof["n_queries"],
            "key_plans": prof["key_plans"],
        }
        if explain:
            log(f"--- SQL of {label}: {prof['n_queries']} queries, {prof['sql_ms']} ms")
            for q in prof["queries"]:
                log(f"  {q['ms']:7.2f} ms  {q['sql'][:220]}")
            for e in prof["explains"]:
                print(f"\n### {label}\n{e['sql']}\n{e['plan']}", file=sys.stderr)
    return summary


# ==================================================================================================
# Main
# ==================================================================================================

CONFIGS = {
    "sync5": {"worker_class": "sync", "workers": 5, "threads": 1},
    "gthread2x4": {"worker_class": "gthread", "workers": 2, "threads": 4},
    "gthread3x4": {"worker_class": "gthread", "workers": 3, "threads": 4},
    "gthread5x2": {"worker_class": "gthread", "workers": 5, "threads": 2},
}
DEFAULT_CONFIG = "sync5"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="small figures: 100,000-item large batch, 15 s phases"
    )
    p.add_argument("--duration", type=float, help="seconds of each load phase (quick 15, full 60)")
    p.add_argument("--clients", type=int, default=32, help="closed-loop annotators (32)")
    p.add_argument("--annotators", type=int, default=64, help="annotators in the fixed-rate phase (64)")
    p.add_argument("--rate", type=float, default=100.0, help="fixed arrival rate, judgments/s (100)")
    p.add_argument("--small-items", type=int, default=10_000)
    p.add_argument("--large-items", type=int, help="quick 100,000, full 1,000,000")
    p.add_argument(
        "--history", type=int, default=50_000, help="submitted assignments of the long-history annotator"
    )
    p.add_argument("--claims", type=int, help="sequential claims per batch for (c) (quick 40, full 200)")
    p.add_argument("--page-every", type=int, default=5, help="a full page view before every Nth judgment (5)")
    p.add_argument(
        "--real-logins",
        type=int,
        help="annotators that sign in through the login form (quick 2, full 16); "
        "the others get a session created directly (a login costs ~0.6 s of CPU: PBKDF2)",
    )
    p.add_argument(
        "--config", choices=sorted(CONFIGS), help=f"gunicorn configuration (default {DEFAULT_CONFIG})"
    )
    p.add_argument("--workers", type=int, help="override the worker count")
    p.add_argument("--threads", type=int, help="override the threads per worker (gthread)")
    p.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="try every gunicorn configuration briefly and keep the best (default: on for full runs)",
    )
    p.add_argument("--preload", action="store_true", help="gunicorn --preload")
    p.add_argument("--sweep-seconds", type=float, default=8.0, help="closed-loop seconds per sweep run (8)")
    p.add_argument(
        "--explain", action="store_true", help="print the SQL and EXPLAIN ANALYZE of one submit per case"
    )
    p.add_argument(
        "--keep-db", action="store_true", help="do not drop the database at the end (investigation)"
    )
    p.add_argument(
        "--cold-render",
        action="store_true",
        help="load responses without their HTML, so that the first view renders and stores it (the state "
        "before the import's background renderer has run); by default they arrive rendered",
    )
    p.add_argument(
        "--setup-only",
        action="store_true",
        help="load the data, set passwords, keep the database and stop (for EXPLAIN by hand)",
    )
    a = p.parse_args()
    a.duration = a.duration or (15.0 if a.quick else 60.0)
    a.large_items = a.large_items or (100_000 if a.quick else 1_000_000)
    a.claims = a.claims or (40 if a.quick else 200)
    a.grace = 3.0 if a.quick else 10.0
    a.real_logins = a.real_logins if a.real_logins is not None else (2 if a.quick else 16)
    if a.sweep is None:
        a.sweep = not a.quick
    a.history = min(a.history, a.large_items)
    return a


def gunicorn_for(settings: BenchSettings, name: str, args: argparse.Namespace) -> Gunicorn:
    cfg = dict(CONFIGS[name])
    if args.workers:
        cfg["workers"] = args.workers
    if args.threads:
        cfg["threads"] = args.threads
    return Gunicorn(settings, preload=args.preload, **cfg)


def main() -> int:
    args = parse_args()
    install_signal_handlers()
    db_name = f"annotate_bench_{os.getpid()}"
    result: dict[str, Any] = {"mode": "quick" if args.quick else "full", "database": db_name}
    settings: BenchSettings | None = None
    server: Gunicorn | None = None
    sampler: RssSampler | None = None
    anns: list[Annotator] = []
    jobs: dict[str, DjangoJob] = {}  # background Django processes, killed on the way out
    static: subprocess.Popen[str] | None = None
    t_start = time.monotonic()
    result["load_average_start"] = load_average()
    result["python_speed_start"] = python_speed()
    try:
        log(f"creating database {db_name}")
        db_url = create_database(db_name)
        settings = BenchSettings(db_url)
        t = time.monotonic()
        migrate(settings)
        result["migrate_s"] = round(time.monotonic() - t, 2)
        log(f"migrated in {result['migrate_s']} s; collecting static files in the background")
        static = settings.start_manage("collectstatic", "--noinput", "-v0")
        fresh = args.claims
        log(
            f"loading: small batch {args.small_items:,} items, large batch {args.large_items:,} items, "
            f"{args.annotators} annotators, history {args.history:,}"
        )
        # Passwords for everyone; sessions for all but the annotators that sign in through the form. This
        # runs in a child process (Django) as soon as the users exist, while items and responses load.

        def start_sessions(ds: Dataset) -> None:
            real = set(ds.main_users[: args.real_logins])
            wanted = [u for u in ds.all_users() if u not in real]
            jobs["sessions"] = settings.start_django(
                SESSIONS_SNIPPET,
                json.dumps({"all": ds.all_users(), "sessions": wanted, "password": PASSWORD}),
            )

        ds = load_data(
            db_url,
            small=args.small_items,
            large=args.large_items,
            annotators=args.annotators,
            fresh=fresh,
            history=args.history,
            on_users_committed=start_sessions,
            cold_render=args.cold_render,
        )
        result["load_s"] = ds.load_seconds
        log(f"loaded: {ds.load_seconds}")
        if static.wait() != 0:
            raise RuntimeError("collectstatic failed:\n" + (static.stderr.read() if static.stderr else ""))
        minted = json.loads(jobs["sessions"].result())
        sessions = {int(k): v for k, v in minted["sessions"].items()}
        cookie = minted["session_cookie"]
        real = set(ds.main_users[: args.real_logins])
        log(f"passwords set and {len(sessions)} sessions created")
        if args.setup_only:
            args.keep_db = True
            log(
                f"setup only: {db_url} (small batch {ds.small_batch}, large batch {ds.large_batch}, "
                f"history annotator {ds.history_user}, continuing {ds.cont_small}/{ds.cont_large}); "
                f"password {PASSWORD!r}"
            )
            return 0

        # The plan of a first claim on the data as loaded (the planner's choice may change later, with
        # new statistics): a background Django process, done while gunicorn starts.
        early_profile = jobs["early_profile"] = start_sql_profile(
            settings, ds, explain=False, first_claims_only=True
        )

        # --- gunicorn configuration ---------------------------------------------------------------
        sweep: dict[str, Any] = {}
        chosen = args.config or DEFAULT_CONFIG
        if args.sweep and not args.config:
            # Each configuration twice, in the order A B C D D C B A, so that drift (other work on the
            # machine, the database settling after the load) does not favour whichever runs first.
            sweep_users = ds.main_users[args.real_logins : args.real_logins + args.clients]
            names = list(CONFIGS)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for name in names + names[::-1]:
                server = gunicorn_for(settings, name, args)
                server.start()
                sw_anns = make_annotators(server.base_url, ds, sweep_users, sessions, cookie)
                rec = Recorder()
                res = closed_loop(
                    sw_anns,
                    ds.small_batch,
                    duration=args.sweep_seconds,
                    warmup=2.0,
                    page_every=args.page_every,
                    rec=rec,
                    meter=CpuMeter(server.pid, db_name),
                )
                res["submit"] = rec.summary().get("submit")
                runs[name].append(res)
                log(
                    f"sweep {name}: {res['judgments_per_s']} judgments/s, submit p50 "
                    f"{(res['submit'] or {}).get('p50_ms')} ms p99 {(res['submit'] or {}).get('p99_ms')} ms, "
                    f"other work {(res.get('cpu') or {}).get('other_cores')} cores"
                )
                for a in sw_anns:
                    a.close()
                server.stop()
                server = None
            for name in names:
                rs = runs[name]
                sweep[name] = {
                    "config": gunicorn_for(settings, name, args).describe(),
                    "judgments_per_s": round(sum(r["judgments_per_s"] for r in rs) / len(rs), 1),
                    "submit_p99_ms": max((r["submit"] or {}).get("p99_ms") or 0 for r in rs) or None,
                    "runs": rs,
                }
            best = max(r["judgments_per_s"] for r in sweep.values())
            # Among the configurations within 5% of the best throughput, the lowest submit p99 wins.
            near = [n for n, r in sweep.items() if r["judgments_per_s"] >= 0.95 * best]
            chosen = min(near, key=lambda n: sweep[n]["submit_p99_ms"] or 1e9)
            result["sweep"] = sweep
            log(
                f"sweep chose {chosen}: "
                + ", ".join(f"{n} {r['judgments_per_s']}/s" for n, r in sweep.items())
            )

        server = gunicorn_for(settings, chosen, args)
        server.start()
        result["gunicorn"] = {"name": chosen, **server.describe()}
        log(f"gunicorn {chosen} on {server.base_url} (pid {server.pid})")
        sampler = RssSampler(server.pid)
        sampler.start()
        result["gunicorn_rss_idle_mb"] = round(tree_rss_bytes(server.pid) / 2**20, 1)

        # --- sign-in ------------------------------------------------------------------------------
        anns = make_annotators(server.base_url, ds, ds.main_users, sessions, cookie)
        login_ms: list[float] = []
        lock = threading.Lock()

        def login(a: Annotator) -> None:
            ms = a.login()
            with lock:
                login_ms.append(ms)

        run_threads(login, [(a,) for a in anns if a.user_id in real])
        result["login"] = summarize(login_ms)
        log(f"{len(login_ms)} real logins: p50 {result['login']['p50_ms']} ms")

        result["sql_profile_at_start"] = sql_profile(settings, ds, False, job=early_profile)

        # --- (c, before) fresh claims on pristine batches -------------------------------------------
        log(f"(c) {args.claims} sequential fresh claims per batch (before the load phases)")
        result["claims_before_load"] = claim_series(
            server.base_url, ds, sessions, cookie, ds.fresh_small, ds.fresh_large
        )
        log(f"    {json.dumps(result['claims_before_load'])}")

        # --- (a) closed loop ----------------------------------------------------------------------
        closed = anns[: args.clients]
        log(f"(a) closed loop: {len(closed)} annotators for {args.duration:.0f} s on the small batch")
        rec_a = Recorder()
        res_a = closed_loop(
            closed,
            ds.small_batch,
            duration=args.duration,
            warmup=2.0,
            page_every=args.page_every,
            rec=rec_a,
            meter=CpuMeter(server.pid, db_name),
        )
        res_a["kinds"] = rec_a.summary()
        res_a["errors"] = dict(rec_a.errors)
        result["closed_loop"] = res_a
        log(f"    {res_a['judgments_per_s']} judgments/s; {json.dumps(res_a['kinds'])}; cpu {res_a['cpu']}")

        # --- (b) open loop ------------------------------------------------------------------------
        log(f"(b) fixed rate: {args.rate:g} judgments/s for {args.duration:.0f} s, {len(anns)} annotators")
        rec_b = Recorder()
        res_b = open_loop(
            anns,
            ds.small_batch,
            rate=args.rate,
            duration=args.duration,
            page_every=args.page_every,
            rec=rec_b,
            grace=args.grace,
            meter=CpuMeter(server.pid, db_name),
        )
        res_b["kinds"] = rec_b.summary()
        res_b["errors"] = dict(rec_b.errors)
        result["fixed_rate"] = res_b
        log(
            f"    achieved {res_b['achieved_rate_per_s']}/s; {json.dumps(res_b['kinds'])}; cpu {res_b['cpu']}"
        )

        # --- (c) claims and submits, large vs small -----------------------------------------------
        # Fresh statistics, as autovacuum would have them by now (the load changed who owns assignments).
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ANALYZE assignments_assignment, judgments_judgment, batches_item")
        log(f"(c) {args.claims} sequential fresh claims per batch (after the load phases)")
        result["claims_after_load"] = claim_series(
            server.base_url, ds, sessions, cookie, ds.fresh_small_after, ds.fresh_large_after
        )
        log(f"    {json.dumps(result['claims_after_load'])}")
        log(f"(c) {args.claims} sequential claim+submit loops per batch and for the long-history annotator")
        result["submit_series"] = submit_series(
            server.base_url, ds, sessions, cookie, args.claims, meter=CpuMeter(server.pid, db_name)
        )
        log(f"    {json.dumps(result['submit_series'])}")

        result["sql_profile"] = sql_profile(settings, ds, args.explain)
        log(
            "SQL profile: "
            + json.dumps({k: (v["n_queries"], v["key_plans"]) for k, v in result["sql_profile"].items()})
        )

        sampler.stop()
        result["gunicorn_rss_peak_mb"] = round(sampler.peak / 2**20, 1)
        result["gunicorn_rss_end_mb"] = round(sampler.last / 2**20, 1)
        for a in anns:
            a.close()
        anns = []
        server.stop()
        server = None

        result["python_speed_end"] = python_speed()
        result["load_average_end"] = load_average()
        log("checking invariants")
        result["invariants"] = check_invariants(db_url)
        result["db"] = db_counts(db_url)
        result.update(asset_sizes())
        log(f"invariants: {result['invariants']}")
    finally:
        STOPPING.set()
        for job in jobs.values():
            job.kill()
        if static is not None and static.poll() is None:
            static.kill()
            static.wait()
        for a in anns:
            a.close()
        if sampler:
            sampler.stop()
        if server:
            server.stop()
        if settings:
            settings.cleanup()
        if args.keep_db:
            log(f"kept database {db_name}")
        else:
            try:
                drop_database(db_name)
                if database_exists(db_name):
                    log(f"WARNING: database {db_name} still exists")
            except Exception as exc:  # noqa: BLE001 - report, but do not hide the original error
                log(f"WARNING: could not drop {db_name}: {exc}")
    result["total_s"] = round(time.monotonic() - t_start, 1)

    fixed = result["fixed_rate"]["kinds"].get("overall", {})
    closed_kinds = result["closed_loop"]["kinds"]
    before, after = result["claims_before_load"], result["claims_after_load"]
    ratios = [r for r in (before["ratio_p50_large_vs_small"], after["ratio_p50_large_vs_small"]) if r]
    headline = {
        "p50_ms": fixed.get("p50_ms"),
        "p99_ms": fixed.get("p99_ms"),
        "fixed_rate_target_per_s": args.rate,
        "fixed_rate_achieved_per_s": result["fixed_rate"]["achieved_rate_per_s"],
        "fixed_rate_kinds": result["fixed_rate"]["kinds"],
        "closed_loop_judgments_per_s": result["closed_loop"]["judgments_per_s"],
        "closed_loop_kinds": closed_kinds,
        "claim_ratio_large_vs_small": max(ratios) if ratios else None,
        "claim_small_p50_ms": before["small"]["p50_ms"],
        "claim_large_p50_ms": before["large"]["p50_ms"],
        "submit_ratio_large_vs_small": result["submit_series"].get("ratio_p50_submit_large_vs_small"),
        "submit_ratio_history_vs_large": result["submit_series"].get("ratio_p50_submit_history_vs_large"),
        "over_assigned_items": result["invariants"]["over_assigned_items"],
        "invariants_ok": not any(result["invariants"].values()),
        # How the claim's item scan ran for a fresh annotator (index, rows filtered away, ms).
        "claim_plan_large_at_start": result["sql_profile_at_start"]["first_claim_large_batch"][
            "key_plans"
        ].get("claim_item"),
        "claim_plan_large": result["sql_profile"]["first_claim_large_batch"]["key_plans"].get("claim_item"),
        "claim_plan_small": result["sql_profile"]["first_claim_small_batch"]["key_plans"].get("claim_item"),
        "progress_plan_long_history": result["sql_profile"]["submit_large_batch_long_history"][
            "key_plans"
        ].get("progress"),
        # CPU per judgment (a page view every --page-every judgments included), and how busy the machine
        # was with other work: latencies are only comparable between runs with little `other` load.
        "app_cpu_ms_per_judgment": (result["closed_loop"].get("cpu") or {}).get("server_cpu_ms_per_judgment"),
        "db_cpu_ms_per_judgment": (result["closed_loop"].get("cpu") or {}).get(
            "postgres_cpu_ms_per_judgment"
        ),
        "other_load_cores": (result["closed_loop"].get("cpu") or {}).get("other_cores"),
        "app_cpu_ms_per_submit_sequential": (result["submit_series"].get("cpu") or {}).get(
            "server_cpu_ms_per_submit"
        ),
        "python_speed": result.get("python_speed_start"),
    }
    emit_result({**headline, **result})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        sys.exit(130)
