"""The database side of generation deliveries, in plain SQL.

Why not the ORM here: a generation is a few milliseconds of worker CPU at most if an endpoint is to be
kept busy (16 requests of 100 ms in flight is 160 generations a second for one worker process), and on
our machines compiling one ORM query costs 0.7-2.5 ms of CPU. These statements are the whole hot path: one
query loads a whole chunk (`load_jobs`), then per response one UPDATE claims an attempt and one
transaction stores the result; the ORM stays everywhere else. The SQL runs on PostgreSQL and SQLite
(RETURNING needs SQLite 3.35+); row locks (FOR UPDATE) are PostgreSQL's, SQLite serializes writers anyway.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from annotate.batches.models import Batch, Item, ItemStatus, Response, ResponseStatus
from annotate.core import rawsql
from annotate.endpoints.models import ModelEndpoint, SamplingConfig

R = Response._meta.db_table
I = Item._meta.db_table  # noqa: E741
B = Batch._meta.db_table
C = SamplingConfig._meta.db_table
E = ModelEndpoint._meta.db_table


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


@dataclass
class Job:
    """A response to generate, with what the request needs (unsaved model instances, not queried again)."""

    response_id: int
    status: str
    attempts: int
    request_id: str
    item_id: int
    item_status: str
    conversation: list[dict[str, Any]]
    batch_id: int
    responses_per_item: int
    config: SamplingConfig | None
    endpoint: ModelEndpoint | None


_LOAD = f"""
SELECT r.id, r.status, r.attempts, r.request_id, r.item_id, i.status, i.conversation, i.batch_id,
       b.responses_per_item,
       c.id, c.label, c.enabled, c.temperature, c.top_p, c.max_tokens, c.system_prompt, c.seed,
       c.extra_params,
       e.id, e.name, e.enabled, e.base_url, e.model, e.api_key_env, e.timeout_s, e.max_concurrency,
       e.requests_per_minute
FROM {R} r
JOIN {I} i ON i.id = r.item_id
JOIN {B} b ON b.id = i.batch_id
LEFT JOIN {C} c ON c.id = r.sampling_config_id
LEFT JOIN {E} e ON e.id = c.endpoint_id
WHERE r.id IN ({{marks}})
ORDER BY r.item_id, r.id
"""


def load_job(response_id: int) -> Job | None:
    jobs = load_jobs([response_id])
    return jobs[0] if jobs else None


def load_jobs(response_ids: Sequence[int]) -> list[Job]:
    """The jobs of a chunk in one query, ordered by item (an item's responses one after another), then id.
    Unknown ids are left out."""
    ids = list(dict.fromkeys(int(pk) for pk in response_ids))
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_LOAD.format(marks=", ".join(["%s"] * len(ids))), ids)
        rows = cursor.fetchall()
    endpoints: dict[int, ModelEndpoint] = {}
    configs: dict[int, SamplingConfig] = {}
    return [_job(row, endpoints, configs) for row in rows]


def _job(row: Sequence[Any], endpoints: dict[int, ModelEndpoint], configs: dict[int, SamplingConfig]) -> Job:
    # Responses of one chunk share their configs and endpoints: one instance each.
    (response_id, status, attempts, request_id, item_id, item_status, conversation, batch_id, k, *rest) = row
    cid, label, c_enabled, temperature, top_p, max_tokens, system_prompt, seed, extra, *ep = rest
    endpoint = config = None
    if ep[0] is not None:
        eid, name, e_enabled, base_url, model, api_key_env, timeout_s, max_concurrency, rpm = ep
        endpoint = endpoints.get(eid)
        if endpoint is None:
            endpoint = endpoints[eid] = ModelEndpoint(
                id=eid,
                name=name,
                enabled=bool(e_enabled),
                base_url=base_url,
                model=model,
                api_key_env=api_key_env,
                timeout_s=float(timeout_s),
                max_concurrency=max_concurrency,
                requests_per_minute=rpm,
            )
    if cid is not None:
        config = configs.get(cid)
        if config is None:
            config = configs[cid] = SamplingConfig(
                id=cid,
                label=label,
                enabled=bool(c_enabled),
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_tokens,
                system_prompt=system_prompt,
                seed=seed,
                extra_params=_json(extra) or {},
            )
            if endpoint is not None:
                config.endpoint = endpoint
    return Job(
        response_id=int(response_id),
        status=status,
        attempts=attempts,
        request_id=str(uuid.UUID(str(request_id))),
        item_id=item_id,
        item_status=item_status,
        conversation=_json(conversation) or [],
        batch_id=batch_id,
        responses_per_item=k,
        config=config,
        endpoint=endpoint,
    )


def claim_attempt(response_id: int, max_attempts: int) -> int | None:
    """Compare-and-set: count one attempt on a pending response that has attempts left; its number, or
    None when the response is not ours to try (no longer pending, or out of attempts)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {R} SET attempts = attempts + 1, touched_at = now() "
            "WHERE id = %s AND status = %s AND attempts < %s "
            "RETURNING attempts",
            [response_id, ResponseStatus.PENDING, max_attempts],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def set_pending_error(response_id: int, error: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {R} SET error = %s WHERE id = %s AND status = %s",
            [error[:4000], response_id, ResponseStatus.PENDING],
        )


def mark_failed(response_id: int, error: str) -> bool:
    return mark_failed_many([response_id], error) > 0


def mark_failed_many(response_ids: Sequence[int], error: str) -> int:
    """Fail the ones still pending; how many that was."""
    ids = [int(pk) for pk in response_ids]
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {R} SET status = %s, error = %s WHERE id IN ({', '.join(['%s'] * len(ids))}) "
            "AND status = %s",
            [ResponseStatus.FAILED, error[:4000], *ids, ResponseStatus.PENDING],
        )
        return cursor.rowcount


@dataclass(frozen=True)
class Generated:
    content: str
    content_html: str
    model_name: str
    latency_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    generated_at: datetime


def _one_round_trip(cursor: Any) -> bool:
    """Whether several statements can go in one execute: psycopg's client-side binding cursor (Django's
    default for PostgreSQL) sends them as one simple query; server-side binding and SQLite cannot."""
    if connection.vendor != "postgresql":
        return False
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg 2
        return False
    return isinstance(getattr(cursor, "cursor", None), psycopg.ClientCursor)


def store_success(job: Job, result: Generated) -> tuple[bool, bool]:
    """Store a generation on a still-pending response and mark its item ready if that completes it.

    Returns (stored, item_ready). One transaction: the item row lock comes first, so of two workers
    storing an item's last two responses the second waits, and its completeness check (a statement
    started after the first one committed: every statement of a READ COMMITTED transaction takes a new
    snapshot) sees both: the item is marked ready exactly once. The response UPDATE is conditional
    (status pending), so a duplicate delivery stores nothing.

    On PostgreSQL the three statements go to the server in one round trip (one simple query, which runs
    as one transaction): the slot is held while this runs, and on a loaded machine each round trip is a
    wait for the server process and then for this thread to be scheduled again (BEGIN, three statements
    and COMMIT took 32 ms of slot time on average, docs/benchmarks.md).
    """
    lock = f"SELECT id FROM {I} WHERE id = %s{rawsql.for_update()}"
    store = (
        f"UPDATE {R} SET status = %s, content = %s, content_html = %s, model_name = %s, latency_ms = %s, "
        "prompt_tokens = %s, completion_tokens = %s, generated_at = %s, error = '' "
        "WHERE id = %s AND status = %s"
    )
    store_params = [
        ResponseStatus.OK,
        result.content,
        result.content_html,
        result.model_name[:200],
        result.latency_ms,
        result.prompt_tokens,
        result.completion_tokens,
        connection.ops.adapt_datetimefield_value(result.generated_at),
        job.response_id,
        ResponseStatus.PENDING,
    ]
    ready = (
        f"UPDATE {I} SET status = %s WHERE id = %s AND status = %s "
        f"AND (SELECT COUNT(*) FROM {R} WHERE item_id = %s) >= %s "
        f"AND NOT EXISTS (SELECT 1 FROM {R} WHERE item_id = %s AND status <> %s)"
    )
    ready_params = [
        ItemStatus.READY,
        job.item_id,
        ItemStatus.PENDING,
        job.item_id,
        job.responses_per_item,
        job.item_id,
        ResponseStatus.OK,
    ]
    with connection.cursor() as cursor:
        if _one_round_trip(cursor):
            # A response that was not stored (a duplicate) leaves the item as it is unless all its
            # responses are ok, in which case marking it ready is right anyway.
            cursor.execute("; ".join([lock, store, ready]), [job.item_id, *store_params, *ready_params])
            cursor.nextset()
            stored = cursor.rowcount > 0
            cursor.nextset()
            return stored, cursor.rowcount > 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(lock, [job.item_id])
        cursor.execute(store, store_params)
        if cursor.rowcount == 0:
            return False, False
        cursor.execute(ready, ready_params)
        return True, cursor.rowcount > 0
