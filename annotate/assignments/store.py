"""The database side of claiming, renewing and submitting, in plain SQL (see annotate/core/rawsql.py
for why: these statements run for every judgment, and compiling them with the ORM cost more CPU than
running them). The rules stay in services.py; this module only reads and writes rows. The SQL runs on
PostgreSQL and SQLite (RETURNING and upserts need SQLite 3.35+); row locks are PostgreSQL's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import connection

from annotate.assignments.models import AnnotatorProgress, Assignment, AssignmentStatus, GuidelinesSeen
from annotate.batches.models import Batch, Item, ItemStatus, Response
from annotate.core import rawsql

A = Assignment._meta.db_table
I = Item._meta.db_table  # noqa: E741
R = Response._meta.db_table
B = Batch._meta.db_table
P = AnnotatorProgress._meta.db_table
G = GuidelinesSeen._meta.db_table
ACTIVE = AssignmentStatus.ACTIVE.value
READY = ItemStatus.READY.value
_POSITIONS = Assignment._meta.get_field("positions")


def _dt(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _date(value: date) -> Any:
    return connection.ops.adapt_datefield_value(value)


def active_leases(annotator_id: int) -> list[Assignment]:
    """The annotator's active assignments (with their items), locked."""
    a, i = rawsql.columns(Assignment, "a"), rawsql.columns(Item, "i")
    rows = rawsql.fetchall(
        f"SELECT {a.sql}, {i.sql} FROM {A} a JOIN {I} i ON i.id = a.item_id "
        f"WHERE a.annotator_id = %s AND a.status = %s ORDER BY a.id{rawsql.for_update('a')}",
        [annotator_id, ACTIVE],
    )
    leases = []
    for row in rows:
        assignment = a.load(row)
        assignment.item = i.load(row, len(a))
        leases.append(assignment)
    return leases


def _open_item_sql(gold: bool, *, wait: bool, below_cursor: bool) -> str:
    i = rawsql.columns(Item, "i")
    # The predicates spell out the claim's partial indexes (item_open_for_claim / item_gold_open_for_claim),
    # and `batch_id BETWEEN b AND b` keeps PostgreSQL ordering by that index (see services._open_items).
    gold_sql = "i.is_gold" if gold else "NOT i.is_gold"
    if below_cursor:
        where = (
            f"i.id < %s AND NOT EXISTS (SELECT 1 FROM {A} s WHERE s.item_id = i.id AND s.annotator_id = %s)"
        )
    else:
        cursor = f"SELECT MAX(c.item_id) FROM {A} c WHERE c.annotator_id = %s AND c.batch_id = %s"
        where = f"i.id > COALESCE(({cursor}), 0)"
    return (
        f"SELECT {i.sql} FROM {I} i WHERE i.batch_id BETWEEN %s AND %s AND i.status = '{READY}' "
        f"AND i.taken < i.wanted AND {gold_sql} AND {where} ORDER BY i.batch_id, i.id LIMIT 1"
        f"{rawsql.for_update('i', skip_locked=not wait)}"
    )


def open_item_ahead(batch_id: int, annotator_id: int, *, gold: bool, wait: bool) -> Item | None:
    """The first open item above the annotator's cursor in the batch, locked (skipping locked rows
    unless `wait`)."""
    row = rawsql.fetchone(
        _open_item_sql(gold, wait=wait, below_cursor=False), [batch_id, batch_id, annotator_id, batch_id]
    )
    return rawsql.columns(Item, "i").load(row) if row else None


def open_item_below(batch_id: int, annotator_id: int, cursor: int, *, gold: bool, wait: bool) -> Item | None:
    """The first open item below `cursor` that the annotator never had, locked."""
    row = rawsql.fetchone(
        _open_item_sql(gold, wait=wait, below_cursor=True), [batch_id, batch_id, cursor, annotator_id]
    )
    return rawsql.columns(Item, "i").load(row) if row else None


def cursor_of(batch_id: int, annotator_id: int) -> int:
    row = rawsql.fetchone(
        f"SELECT MAX(item_id) FROM {A} WHERE annotator_id = %s AND batch_id = %s", [annotator_id, batch_id]
    )
    return (row[0] if row else None) or 0


def responses_of(item_id: int) -> list[Response]:
    r = rawsql.columns(Response, "r")
    return [
        r.load(row)
        for row in rawsql.fetchall(
            f"SELECT {r.sql} FROM {R} r WHERE r.item_id = %s ORDER BY r.slot", [item_id]
        )
    ]


def assignment_insert(assignment: Assignment) -> Assignment:
    """Insert a new lease (all its fields set by the caller); sets its id."""
    row = rawsql.fetchone(
        f"INSERT INTO {A} (item_id, batch_id, annotator_id, status, leased_at, expires_at, finished_at, "
        "positions, guidelines_version, skip_reason, flag, flag_note) "
        "VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s, '', '', '') RETURNING id",
        [
            assignment.item_id,
            assignment.batch_id,
            assignment.annotator_id,
            assignment.status,
            _dt(assignment.leased_at),
            _dt(assignment.expires_at),
            _POSITIONS.get_db_prep_value(assignment.positions, connection),
            assignment.guidelines_version,
        ],
    )
    assert row is not None
    assignment.pk = row[0]
    assignment._state.adding = False
    assignment._state.db = connection.alias
    return assignment


def item_take(item_id: int, delta: int = 1) -> None:
    rawsql.execute(f"UPDATE {I} SET taken = taken + %s WHERE id = %s", [delta, item_id])


def lease_extend(assignment_id: int, expires_at: datetime) -> None:
    rawsql.execute(f"UPDATE {A} SET expires_at = %s WHERE id = %s", [_dt(expires_at), assignment_id])


def assignment_finish(assignment_id: int, status: str, finished_at: datetime) -> None:
    rawsql.execute(
        f"UPDATE {A} SET status = %s, finished_at = %s WHERE id = %s",
        [status, _dt(finished_at), assignment_id],
    )


def own_assignment_for_submit(
    annotator_id: int, assignment_id: int, idempotency_key: str
) -> tuple[Assignment, int | None, int | None] | None:
    """The annotator's assignment, locked, with its batch; and the judgment (id, assignment id) this
    annotator already stored under `idempotency_key`, if any. One round trip for the submit's reads."""
    from annotate.judgments.models import Judgment

    a, b = rawsql.columns(Assignment, "a"), rawsql.columns(Batch, "b")
    row = rawsql.fetchone(
        f"SELECT {a.sql}, {b.sql}, j.id, j.assignment_id FROM {A} a JOIN {B} b ON b.id = a.batch_id "
        f"LEFT JOIN {Judgment._meta.db_table} j "
        "ON j.annotator_id = a.annotator_id AND j.idempotency_key = %s "
        f"WHERE a.id = %s AND a.annotator_id = %s{rawsql.for_update('a')}",
        [idempotency_key, assignment_id, annotator_id],
    )
    if row is None:
        return None
    assignment = a.load(row)
    assignment.batch = b.load(row, len(a))
    return assignment, row[-2], row[-1]


_PROGRESS_UPSERT = f"""
    INSERT INTO {P} (annotator_id, batch_id, total, day, today)
    VALUES (%s, %s, 1, %s, 1)
    ON CONFLICT (annotator_id, batch_id) DO UPDATE SET
        total = {P}.total + 1,
        today = CASE WHEN {P}.day = excluded.day THEN {P}.today + 1 ELSE 1 END,
        day = excluded.day
    RETURNING today, total
"""


def progress_count(annotator_id: int, batch_id: int, day: date) -> tuple[int, int]:
    """One more submitted judgment on `day`: returns (today, total) after it."""
    row = rawsql.fetchone(_PROGRESS_UPSERT, [annotator_id, batch_id, _date(day)])
    assert row is not None
    return row[0], row[1]


def progress_row(annotator_id: int, batch_id: int) -> tuple[date, int, int] | None:
    """(day, today, total) of the annotator in the batch, or None before their first judgment."""
    row = rawsql.fetchone(
        f"SELECT day, today, total FROM {P} WHERE annotator_id = %s AND batch_id = %s",
        [annotator_id, batch_id],
    )
    if row is None:
        return None
    day = row[0]
    if isinstance(day, str):  # SQLite
        day = date.fromisoformat(day)
    return day, row[1], row[2]


def guidelines_seen(annotator_id: int, batch_id: int, version: int) -> bool:
    return (
        rawsql.fetchone(
            f"SELECT 1 FROM {G} WHERE annotator_id = %s AND batch_id = %s AND version >= %s",
            [annotator_id, batch_id, version],
        )
        is not None
    )
