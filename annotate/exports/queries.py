"""The SQL of exports, and the snapshot they read through.

One query per export joins judgments to their items, responses and annotators (the few sampling configs are
read once, by a small query in the same transaction). It is read through a server-side cursor in chunks
inside one REPEATABLE READ, READ ONLY transaction: every chunk comes from the same snapshot, so the file is
consistent even while annotators keep submitting, and two exports of the same spec over unchanged data read
the same rows in the same order.

The SELECT lists are ordered for the row builders in rows.py: the comparison query ends with two blocks of
columns that a pairwise comparison copies unchanged into its output row (`PAIRWISE_HEAD`, `PAIRWISE_TAIL`).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction

from annotate.accounts.models import User
from annotate.assignments.models import Assignment
from annotate.batches.models import Batch, Item, Response
from annotate.core.choices import Mode, SafetyBin, Strength
from annotate.endpoints.models import SamplingConfig
from annotate.exports.spec import AiJudgments, ExportSpec
from annotate.judges.models import JudgeVersion
from annotate.judgments.models import Judgment
from annotate.quality.models import AnnotatorStats

T = SimpleNamespace(
    judgment=Judgment._meta.db_table,
    assignment=Assignment._meta.db_table,
    item=Item._meta.db_table,
    batch=Batch._meta.db_table,
    response=Response._meta.db_table,
    config=SamplingConfig._meta.db_table,
    user=User._meta.db_table,
    judge_version=JudgeVersion._meta.db_table,
    annotator_stats=AnnotatorStats._meta.db_table,
)
# Who made a judgment: "human", or "ai:<judge>@v<version>" (the version's label, fixed when published).
_SOURCE = f"""CASE WHEN u.kind = 'ai' THEN COALESCE(
    (SELECT 'ai:' || v.label FROM {T.judge_version} v WHERE v.user_id = u.id), 'ai') ELSE 'human' END"""


def _columns(select: Sequence[tuple[str, str]]) -> SimpleNamespace:
    return SimpleNamespace(**{name: index for index, (name, _) in enumerate(select)})


# The ranking judgments' responses (all K of the item) and the order they were shown in, as JSON text; NULL
# for pairwise judgments, so that the common case pays nothing for them.
_RANKING_RESPONSES = f"""CASE WHEN j.mode = '{Mode.RANKING}' THEN (
    SELECT json_agg(json_build_array(r.id, r.model_name, r.content, r.sampling_config_id) ORDER BY r.slot)
    FROM {T.response} r WHERE r.item_id = j.item_id)::text END"""
_RANKING_POSITIONS = f"""CASE WHEN j.mode = '{Mode.RANKING}' THEN (
    SELECT a.positions::text FROM {T.assignment} a WHERE a.id = j.assignment_id) END"""

# Sampling configs are few: rows carry their ids and rows.py looks their parameters up (CONFIG_SELECT, read in
# the same snapshot), which keeps two joins and ten columns per row out of the hot path.
COMPARISON_SELECT: list[tuple[str, str]] = [
    ("id", "j.id"),
    ("strength", "j.strength"),
    ("conversation", "i.conversation::text"),
    ("chosen_content", "rc.content"),
    ("rejected_content", "rr.content"),
    ("safety_labels", "j.safety_labels::text"),
    ("ranking", "j.ranking::text"),
    ("ranking_responses", _RANKING_RESPONSES),
    ("ranking_positions", _RANKING_POSITIONS),
    ("chosen_config", "rc.sampling_config_id"),
    ("rejected_config", "rr.sampling_config_id"),
    # From here on, in the output order of datasets.TRL_PREFERENCE (PAIRWISE_HEAD, configs, PAIRWISE_TAIL).
    ("judgment_id", "j.id"),
    ("item_id", "j.item_id"),
    ("batch", "j.batch_id"),
    ("track", "j.track"),
    ("mode", "j.mode"),
    ("safety_bin", "NULLIF(j.safety_bin, '')"),
    ("annotator", "u.pseudonym"),
    ("annotator_kind", "u.kind"),
    ("source", _SOURCE),
    ("chosen_model", "rc.model_name"),
    ("rejected_model", "rr.model_name"),
    ("chosen_response_id", "rc.id"),
    ("rejected_response_id", "rr.id"),
    ("position_chosen", "j.position_chosen::bigint"),
    ("time_spent_ms", "j.time_spent_ms::bigint"),
    ("guidelines_version", "j.guidelines_version::bigint"),
    ("is_gold", "i.is_gold"),
    ("votes", "NULL::bigint"),
    ("agreement", "NULL::float8"),
    # Naive UTC: orjson writes a naive datetime (OPT_NAIVE_UTC) three times faster than an aware one, and
    # Arrow takes naive values as UTC.
    ("created_at", "j.created_at AT TIME ZONE 'UTC'"),
]
C = _columns(COMPARISON_SELECT)
PAIRWISE_HEAD = slice(C.judgment_id, C.position_chosen)
PAIRWISE_TAIL = slice(C.position_chosen, len(COMPARISON_SELECT))
CONFIG_COLUMNS = ("sampling_config", "temperature", "top_p", "max_tokens", "seed", "system_prompt")
CONFIG_SELECT = f"""SELECT id, label, temperature, top_p, max_tokens::bigint, seed, NULLIF(system_prompt, '')
FROM {T.config} ORDER BY id"""

RAW_SELECT: list[tuple[str, str]] = [
    ("assignment_id", "a.id"),
    ("judgment_id", "j.id"),
    ("status", "a.status"),
    ("skip_reason", "a.skip_reason"),
    ("flag", "a.flag"),
    ("flag_note", "a.flag_note"),
    ("unsafe_choice", "j.flagged"),
    ("batch", "a.batch_id"),
    ("track", "b.track"),
    ("mode", "b.mode"),
    ("item_id", "a.item_id"),
    ("is_gold", "i.is_gold"),
    ("annotator", "u.pseudonym"),
    ("annotator_kind", "u.kind"),
    ("source", _SOURCE),
    ("conversation", "i.conversation::text"),
    (
        "responses",
        f"""(SELECT json_agg(json_build_array(r.id, r.slot, r.model_name, c.label, r.content) ORDER BY r.slot)
            FROM {T.response} r LEFT JOIN {T.config} c ON c.id = r.sampling_config_id
            WHERE r.item_id = a.item_id)::text""",
    ),
    ("positions", "a.positions::text"),
    ("chosen_response_id", "j.chosen_id"),
    ("rejected_response_id", "j.rejected_id"),
    ("strength", "NULLIF(j.strength, '')"),
    ("ranking", "j.ranking::text"),
    ("safety_labels", "j.safety_labels::text"),
    ("safety_bin", "NULLIF(j.safety_bin, '')"),
    ("position_chosen", "j.position_chosen::bigint"),
    ("rationale", "j.rationale"),
    ("time_spent_ms", "j.time_spent_ms::bigint"),
    ("guidelines_version", "COALESCE(j.guidelines_version, a.guidelines_version)::bigint"),
    ("created_at", "COALESCE(j.created_at, a.finished_at, a.leased_at) AT TIME ZONE 'UTC'"),
]
R = _columns(RAW_SELECT)


@dataclass(frozen=True)
class Query:
    sql: str
    params: dict[str, Any]


def _selection(spec: ExportSpec, *, at: str, batch: str, track: str) -> tuple[list[str], dict[str, Any]]:
    """The WHERE terms every schema shares: batches, track, time range, gold items, annotator kind."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if spec.batches is not None:
        where.append(f"{batch} = ANY(%(batches)s)")
        params["batches"] = list(spec.batches)
    if spec.track is not None:
        where.append(f"{track} = %(track)s")
        params["track"] = spec.track
    if spec.created_from is not None:
        where.append(f"{at} >= %(created_from)s")
        params["created_from"] = spec.created_from
    if spec.created_until is not None:
        where.append(f"{at} < %(created_until)s")
        params["created_until"] = spec.created_until
    if not spec.include_gold:
        where.append("NOT i.is_gold")
    if spec.ai == AiJudgments.NONE:
        where.append("u.kind = 'human'")
    elif spec.ai == AiJudgments.ONLY:
        where.append("u.kind = 'ai'")
    if spec.exclude_flagged_annotators:
        # Flags are per batch (the annotator's row in that batch's latest quality report).
        where.append(
            f"NOT EXISTS (SELECT 1 FROM {T.annotator_stats} s "
            f"WHERE s.batch_id = {batch} AND s.annotator_id = u.id AND s.flagged)"
        )
    return where, params


def _comparison_where(spec: ExportSpec) -> tuple[list[str], dict[str, Any]]:
    where, params = _selection(spec, at="j.created_at", batch="j.batch_id", track="j.track")
    # The LLaMa-2 rule and "negligible" are properties of a pairwise judgment, so the database drops those
    # rows; ranking pairs are checked in Python, where they are made.
    if not spec.keep_unsafe_chosen:
        where.append(f"j.safety_bin <> '{SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE}'")
    if spec.drop_negligible:
        where.append(f"j.strength <> '{Strength.NEGLIGIBLY_BETTER_OR_UNSURE}'")
    return where, params


def comparison_query(spec: ExportSpec) -> Query:
    """Judgments to turn into comparisons, in a deterministic order: by judgment id, or by item and then
    judgment id when votes are counted per item (rows.py groups one item at a time)."""
    where, params = _comparison_where(spec)
    select = ",\n  ".join(f"{expr} AS {name}" for name, expr in COMPARISON_SELECT)
    order = "j.item_id, j.id" if spec.needs_item_votes else "j.id"
    sql = f"""SELECT
  {select}
FROM {T.judgment} j
JOIN {T.item} i ON i.id = j.item_id
JOIN {T.user} u ON u.id = j.annotator_id
LEFT JOIN {T.response} rc ON rc.id = j.chosen_id
LEFT JOIN {T.response} rr ON rr.id = j.rejected_id
WHERE {" AND ".join(where) or "TRUE"}
ORDER BY {order}"""
    return Query(sql, params)


def raw_query(spec: ExportSpec) -> Query:
    """Every judgment, plus the assignments that were skipped or flagged without one, by assignment id."""
    at = "COALESCE(j.created_at, a.finished_at, a.leased_at)"
    where, params = _selection(spec, at=at, batch="a.batch_id", track="b.track")
    where.insert(0, "(j.id IS NOT NULL OR a.status = 'skipped' OR a.flag <> '')")
    select = ",\n  ".join(f"{expr} AS {name}" for name, expr in RAW_SELECT)
    sql = f"""SELECT
  {select}
FROM {T.assignment} a
JOIN {T.item} i ON i.id = a.item_id
JOIN {T.batch} b ON b.id = a.batch_id
JOIN {T.user} u ON u.id = a.annotator_id
LEFT JOIN {T.judgment} j ON j.assignment_id = a.id
WHERE {" AND ".join(where)}
ORDER BY a.id"""
    return Query(sql, params)


def source_mix(spec: ExportSpec, *, raw: bool) -> dict[str, int]:
    """Judgments the export reads, counted by source (human, ai:<judge>@v<n>), for the dataset card: the
    exports' own WHERE terms over the judgments, users and items only (no response or ranking columns)."""
    if raw:
        where, params = _selection(spec, at="j.created_at", batch="j.batch_id", track="j.track")
    else:
        where, params = _comparison_where(spec)
    sql = f"""SELECT {_SOURCE} AS source, COUNT(*)
FROM {T.judgment} j
JOIN {T.item} i ON i.id = j.item_id
JOIN {T.user} u ON u.id = j.annotator_id
WHERE {" AND ".join(where) or "TRUE"}
GROUP BY 1 ORDER BY 1"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {str(row[0]): int(row[1]) for row in cursor.fetchall()}


def sampling_configs() -> dict[int, tuple[Any, ...]]:
    """Every sampling config's (label, temperature, top_p, max_tokens, seed, system prompt), by id."""
    with connection.cursor() as cursor:
        cursor.execute(CONFIG_SELECT)
        return {row[0]: tuple(row[1:]) for row in cursor.fetchall()}


def batches_info(batch_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Name, track, mode and current guidelines version of the exported batches, for the dataset card."""
    if not batch_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, name, track, mode, guidelines_version FROM {T.batch} WHERE id = ANY(%s) ORDER BY id",
            [list(batch_ids)],
        )
        return [
            {"id": r[0], "name": r[1], "track": r[2], "mode": r[3], "guidelines_version": r[4]}
            for r in cursor.fetchall()
        ]


# --- Reading -----------------------------------------------------------------------------------------


class ExportsNeedPostgres(Exception):
    pass


@contextmanager
def snapshot() -> Iterator[None]:
    """One REPEATABLE READ, READ ONLY transaction: every query inside sees the same snapshot."""
    if connection.vendor != "postgresql":
        # The export SQL, its server-side cursor and snapshot are PostgreSQL's; the embedded SQLite default
        # runs everything else. The job fails with this message.
        raise ExportsNeedPostgres("Exports need PostgreSQL (set DATABASE_URL=postgres://...).")
    if connection.in_atomic_block:
        # The isolation level can only be set at the start of a transaction; inside someone else's the
        # export would silently read a READ COMMITTED view that may change between chunks.
        raise RuntimeError("An export must be read outside any transaction (it opens its own snapshot).")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # The export query costs far above jit_above_cost, so PostgreSQL would compile it to machine
            # code before returning the first row: measured 1.8-3.6 s (more on a busy machine) of pure wait
            # for a plan of index lookups that then runs 0.4 s per 100,000 rows either way. SET LOCAL ends
            # with this transaction.
            cursor.execute("SET LOCAL jit = off")
        yield


_cursor_names = itertools.count(1)


def stream(query: Query, *, chunk_rows: int, prefetch: bool = True) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of `query` in chunks of up to `chunk_rows`, from a server-side cursor inside snapshot().

    Rows arrive in binary (cheaper to decode than text). With `prefetch`, a thread fetches the next chunk
    while the caller works on the current one, so the database computes rows while Python serialises the
    previous ones (the driver releases the GIL while it waits on the socket); measured on the export
    benchmark this is worth 20-30% of wall time. At most three chunks are alive at a time: one being worked
    on, one queued, one arriving.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("stream() reads inside snapshot().")
    # The psycopg connection itself, in the transaction snapshot() opened: Django's cursor wrapper may only be
    # used from the thread that made it, and the prefetching thread is another one.
    raw = connection.connection
    cursor = raw.cursor(name=f"export_rows_{next(_cursor_names)}", binary=True)
    try:
        cursor.execute(query.sql, query.params)
        if prefetch:
            yield from _prefetched(cursor, chunk_rows)
        else:
            while rows := cursor.fetchmany(chunk_rows):
                yield rows
    finally:
        cursor.close()


_DONE = object()


def _prefetched(cursor: Any, chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    chunks: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            while True:
                rows = cursor.fetchmany(chunk_rows)
                if not put(rows or _DONE) or not rows:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(exc)

    worker = threading.Thread(target=fetch, name="export-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            # Unblock a producer waiting on a full queue, then wait for its current fetch to end: the
            # cursor must not be closed (or the transaction ended) under a running FETCH.
            with suppress(queue.Empty):
                chunks.get_nowait()
            worker.join(timeout=0.2)
