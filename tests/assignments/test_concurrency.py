"""Claims, submits and the expiry sweep running at once, on PostgreSQL, from real threads.

Each thread has its own database connection (Django's are per thread) and closes it when done, so the
test database can be dropped afterwards. The tests use `transactional_db`: the threads must see each
other's commits.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, Q

from annotate.accounts.models import User
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.assignments.services import (
    assignment_claim_next,
    assignment_skip,
    assignments_expire_stale,
)
from annotate.batches.models import Batch, Item
from annotate.core.errors import ConflictError
from annotate.judgments.models import Judgment
from annotate.judgments.services import judgment_submit
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

THREAD_TIMEOUT = 30
ALL_THREADS_TIMEOUT = 120


def run_threads(targets: list[Callable[[], Any]]) -> list[Any]:
    """Run the callables in threads released together; return their results, re-raise the first error."""
    start = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def runner(index: int, target: Callable[[], Any]) -> None:
        try:
            start.wait(timeout=THREAD_TIMEOUT)
            results[index] = target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, t), daemon=True) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + ALL_THREADS_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def answer(user: User, assignment: Assignment, key: str | None = None) -> Any:
    key = key or f"answer-{user.pk}-{assignment.pk}"
    return judgment_submit(
        annotator=user, assignment_id=assignment.pk, data=factories.pairwise_answer(assignment, key)
    )


def assert_places_match_leases(batch: Batch) -> None:
    """The invariant every service keeps: an item's `taken` counts its active and submitted leases, its
    judgments never exceed what it wants, and a judgment exists exactly for each submitted lease."""
    items = Item.objects.filter(batch=batch).annotate(
        holding=Count(
            "assignments",
            filter=Q(assignments__status__in=[AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED]),
        )
    )
    mismatched = {item.pk: (item.taken, item.holding) for item in items if item.taken != item.holding}
    assert mismatched == {}, "item: (taken, active + submitted leases)"
    judged = Counter(Judgment.objects.filter(batch=batch).values_list("item_id", flat=True))
    wanted = dict(Item.objects.filter(batch=batch).values_list("pk", "wanted"))
    assert {pk: n for pk, n in judged.items() if n > wanted[pk]} == {}
    not_submitted = Judgment.objects.filter(batch=batch).exclude(
        assignment__status=AssignmentStatus.SUBMITTED
    )
    assert list(not_submitted.values_list("assignment_id", "assignment__status")) == []
    without_judgment = Assignment.objects.filter(
        batch=batch, status=AssignmentStatus.SUBMITTED, judgment__isnull=True
    )
    assert list(without_judgment.values_list("pk", flat=True)) == []


# --- (a) many annotators, one batch -----------------------------------------------------------------


def test_concurrent_annotators_fill_every_item_exactly_to_its_overlap() -> None:
    batch = factories.ready_batch_bulk(items=200, overlap=3)
    users = [factories.quick_annotator(f"crowd{n}") for n in range(20)]

    def work(user: User) -> Callable[[], int]:
        def loop() -> int:
            done = 0
            while (assignment := assignment_claim_next(annotator=user, batch_id=batch.pk)) is not None:
                answer(user, assignment)
                done += 1
                assert done <= 200, "an annotator was served more items than the batch has"
            return done

        return loop

    done = run_threads([work(user) for user in users])

    judgments = Judgment.objects.filter(batch=batch)
    per_item = Counter(judgments.values_list("item_id", flat=True))
    off = {item.pk: per_item[item.pk] for item in Item.objects.filter(batch=batch) if per_item[item.pk] != 3}
    assert off == {}, f"items not judged exactly 3 times (claims per annotator: {done})"
    assert judgments.count() == sum(done) == 600
    pairs = Counter(judgments.values_list("item_id", "annotator_id"))
    assert max(pairs.values()) == 1
    assert not Assignment.objects.filter(status=AssignmentStatus.ACTIVE).exists()
    assert set(Item.objects.filter(batch=batch).values_list("taken", "wanted")) == {(3, 3)}
    assert_places_match_leases(batch)


# --- (b) one annotator, many tabs -------------------------------------------------------------------


def test_tabs_of_one_annotator_claiming_at_once_share_one_lease() -> None:
    batch = factories.ready_batch(items=12, overlap=1)
    user = factories.quick_annotator("tabs")
    for round_no in range(3):
        leases = run_threads(
            [lambda: assignment_claim_next(annotator=user, batch_id=batch.pk) for _ in range(8)]
        )
        assert all(lease is not None for lease in leases)
        assert len({lease.pk for lease in leases}) == 1
        assert Assignment.objects.filter(annotator=user, status=AssignmentStatus.ACTIVE).count() == 1
        assert sum(Item.objects.filter(batch=batch).values_list("taken", flat=True)) == round_no + 1
        answer(user, leases[0])
    assert_places_match_leases(batch)


# --- (c) one submit, many retries -------------------------------------------------------------------


def test_concurrent_submits_with_one_key_store_one_judgment() -> None:
    batch = factories.ready_batch(items=1, overlap=1)
    user = factories.quick_annotator("double_clicker")
    assignment = assignment_claim_next(annotator=user, batch_id=batch.pk)
    assert assignment is not None

    results = run_threads([lambda: answer(user, assignment, key="one-click-key") for _ in range(10)])

    assert Judgment.objects.count() == 1
    assert {result.judgment.pk for result in results} == {Judgment.objects.get().pk}
    assert sorted(result.replayed for result in results) == [False] + [True] * 9
    assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.SUBMITTED
    assert Item.objects.get(pk=assignment.item_id).taken == 1


# --- (d) the sweep racing claims and submits --------------------------------------------------------


def test_the_expiry_sweep_racing_claims_and_submits_keeps_places_exact() -> None:
    batch = factories.ready_batch_bulk(items=40, overlap=2)
    users = [factories.quick_annotator(f"racer{n}") for n in range(5)]
    stop = threading.Event()
    sweeps: list[int] = []

    def sweep() -> int:
        released = 0
        while not stop.is_set():
            released += assignments_expire_stale()
            sweeps.append(1)
            time.sleep(0.002)  # a tight loop, but one that leaves the workers the GIL
        return released

    def work(user: User, seed: int) -> Callable[[], Counter[str]]:
        rng = random.Random(seed)

        def loop() -> Counter[str]:
            outcomes: Counter[str] = Counter()
            try:
                for _ in range(40):
                    assignment = assignment_claim_next(annotator=user, batch_id=batch.pk)
                    if assignment is None:
                        break
                    if rng.random() < 0.4:  # walk away for a moment: the lease runs out under the sweep
                        factories.lapse_lease(assignment)
                        time.sleep(rng.random() * 0.01)
                    try:
                        if rng.random() < 0.15:
                            assignment_skip(annotator=user, assignment_id=assignment.pk, reason="Racing.")
                            outcomes["skipped"] += 1
                        else:
                            answer(user, assignment)
                            outcomes["submitted"] += 1
                    except ConflictError as exc:
                        assert exc.code == "lease_expired"
                        outcomes["too_late"] += 1
            finally:
                stop_if_last()
            return outcomes

        return loop

    remaining = [len(users)]
    lock = threading.Lock()

    def stop_if_last() -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                stop.set()

    results = run_threads([sweep] + [work(user, n) for n, user in enumerate(users)])

    released, outcomes = results[0], sum(results[1:], Counter())
    assert outcomes["submitted"] > 30
    assert len(sweeps) > 10
    assert released > 0, "the sweep must have released leases while the others worked"
    assert_places_match_leases(batch)


# --- races pinned down: a statement held at a chosen point ------------------------------------------

SWEEP_GATE = 7_310_001


@contextmanager
def advisory_gate(key: int) -> Iterator[None]:
    """Hold a session advisory lock on the test thread's connection; a statement that waits on it is held
    right there, after its snapshot was taken, until the block ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def wait_for_gate(key: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted",
                [key],
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.01)
    raise AssertionError("the gated statement never reached the gate")


def start_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def runner() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("finish", ["submit", "skip"])
def test_the_sweep_never_expires_a_lease_finished_while_it_ran(finish: str) -> None:
    """The sweep selects its chunk by id (`pk IN (subquery ... LIMIT n)`) and locks with SKIP LOCKED. A lease
    submitted or skipped after the sweep's statement took its snapshot, but before it reached the row, is
    locked anyway: PostgreSQL re-checks only the outer `pk IN (...)` against the new row version, not the
    subquery's `status = 'active'`. The gate below holds the statement in that window."""
    batch = factories.ready_batch(items=1, overlap=2)
    alice, bob = factories.quick_annotator("alice"), factories.quick_annotator("bob")
    mine = assignment_claim_next(annotator=alice, batch_id=batch.pk)
    theirs = assignment_claim_next(annotator=bob, batch_id=batch.pk)
    assert mine is not None
    assert theirs is not None
    factories.lapse_lease(mine)
    gated: list[str] = []

    def gate_the_chunk_select(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        # The sweep's first locking read of assignments, whatever its exact shape.
        locking = sql.startswith("SELECT") and "FOR UPDATE" in sql and "WHERE" in sql
        if locking and 'FROM "assignments_assignment"' in sql and not gated:
            gated.append(sql)
            sql = sql.replace(
                " WHERE ", f" WHERE (SELECT true FROM pg_advisory_xact_lock_shared({SWEEP_GATE})) AND ", 1
            )
        return execute(sql, *args)

    def sweep() -> int:
        with connection.execute_wrapper(gate_the_chunk_select):
            return assignments_expire_stale()

    with advisory_gate(SWEEP_GATE):
        thread, outcome = start_thread(sweep)
        wait_for_gate(SWEEP_GATE)
        if finish == "submit":
            answer(alice, mine)
        else:
            assignment_skip(annotator=alice, assignment_id=mine.pk, reason="Back, but skipping.")
    thread.join(THREAD_TIMEOUT)

    assert gated, "the sweep's locking read was not gated: adjust the gate, the race is no longer exercised"
    assert "error" not in outcome, outcome.get("error")
    expected = AssignmentStatus.SUBMITTED if finish == "submit" else AssignmentStatus.SKIPPED
    assert Assignment.objects.get(pk=mine.pk).status == expected
    assert outcome["result"] == 0
    assert Item.objects.get(pk=mine.item_id).taken == (2 if finish == "submit" else 1)
    assert_places_match_leases(batch)


def test_a_claim_does_not_report_the_batch_done_while_an_open_item_is_only_locked() -> None:
    """Bob's claim has locked the batch's one item (overlap 2) and is inserting his lease. Alice's claim
    skips the locked row; "nothing left" (None) would send her to the done page although the item has
    room for her. Waiting for the row or answering `claim_contention` are both fine."""
    batch = factories.ready_batch(items=1, overlap=2)
    alice, bob = factories.quick_annotator("alice"), factories.quick_annotator("bob")
    inserting, release = threading.Event(), threading.Event()

    def pause_before_insert(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if sql.replace('"', "").startswith("INSERT INTO assignments_assignment "):
            inserting.set()
            release.wait(THREAD_TIMEOUT)
        return execute(sql, *args)

    def bob_claims() -> Assignment | None:
        with connection.execute_wrapper(pause_before_insert):
            return assignment_claim_next(annotator=bob, batch_id=batch.pk)

    thread, outcome = start_thread(bob_claims)
    assert inserting.wait(10)
    timer = threading.Timer(1.0, release.set)  # in case alice's claim waits for bob's row lock
    timer.start()
    try:
        mine = assignment_claim_next(annotator=alice, batch_id=batch.pk)
    except ConflictError as exc:
        assert exc.code == "claim_contention"
    else:
        assert mine is not None, "alice was told the batch is done while its only item had room for her"
        assert mine.item_id == Item.objects.get(batch=batch).pk
    finally:
        release.set()
        timer.cancel()
        thread.join(THREAD_TIMEOUT)
    assert outcome.get("result") is not None


# --- (e) the admin changes the batch while annotators work -----------------------------------------


def test_overlap_raised_pause_and_reopen_and_skips_while_annotators_work() -> None:
    """Issue 7, fault 4: twelve annotators claim, judge and (every fourth item) skip while an admin raises
    the overlap from 2 to 3, pauses the batch and reopens it. The overlap is honoured throughout, skips are
    not judgments, and every progress figure equals the rows."""
    from annotate.assignments.models import AnnotatorProgress
    from annotate.batches.selectors import batches_with_progress
    from annotate.batches.services import batch_set_overlap, batch_set_status

    batch = factories.ready_batch_bulk(items=40, overlap=2)
    users = [factories.quick_annotator(f"live-admin{n}") for n in range(12)]
    admin_done = threading.Event()

    def work(user: User) -> Callable[[], tuple[int, int]]:
        def loop() -> tuple[int, int]:
            judged = skipped = refused = 0
            while True:
                try:
                    assignment = assignment_claim_next(annotator=user, batch_id=batch.pk)
                except ConflictError as exc:
                    assert exc.code == "batch_not_open", exc.code
                    refused += 1
                    assert refused < 2000, "the batch never reopened"
                    time.sleep(0.005)
                    continue
                if assignment is None:
                    if admin_done.is_set():
                        return judged, skipped
                    time.sleep(0.01)  # the overlap may still be raised: look again
                    continue
                if (judged + skipped) % 4 == 3:
                    assignment_skip(annotator=user, assignment_id=assignment.pk, reason="not my topic")
                    skipped += 1
                else:
                    answer(user, assignment)
                    judged += 1

        return loop

    def admin() -> tuple[int, int]:
        try:
            time.sleep(0.2)
            batch_set_overlap(batch_id=batch.pk, overlap=3)
            batch_set_status(batch_id=batch.pk, status="paused")
            time.sleep(0.2)
            batch_set_status(batch_id=batch.pk, status="open")
        finally:
            admin_done.set()  # never leave the annotators waiting, even if the admin's change failed
        return 0, 0

    results = run_threads([*(work(user) for user in users), admin])

    judged = sum(j for j, _ in results)
    skips = sum(s for _, s in results)
    judgments = Judgment.objects.filter(batch=batch)
    assert judgments.count() == judged
    assert skips > 0
    assert Assignment.objects.filter(batch=batch, status=AssignmentStatus.SKIPPED).count() == skips
    assert not judgments.filter(assignment__status=AssignmentStatus.SKIPPED).exists()
    per_item = Counter(judgments.values_list("item_id", flat=True))
    had = Counter(Assignment.objects.filter(batch=batch).values_list("item_id", flat=True))
    for item in Item.objects.filter(batch=batch):
        assert item.wanted == 3
        assert per_item[item.pk] <= item.wanted, f"item {item.pk} over its overlap"
        if per_item[item.pk] < item.wanted:  # only when every annotator has had it (judged or skipped)
            assert had[item.pk] == len(users), f"item {item.pk} left short while annotators could take it"
    assert sum(1 for item_id in per_item if per_item[item_id] == 3) >= 30
    assert_places_match_leases(batch)
    progress = dict(AnnotatorProgress.objects.filter(batch=batch).values_list("annotator_id", "total"))
    submitted = Counter(
        Assignment.objects.filter(batch=batch, status=AssignmentStatus.SUBMITTED).values_list(
            "annotator_id", flat=True
        )
    )
    assert progress == dict(submitted)
    shown = batches_with_progress(Batch.objects.filter(pk=batch.pk)).get()
    assert shown.n_judgments == judged
