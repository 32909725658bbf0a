"""Batch lifecycle around generation: start, config assignment, pre-generated items, retry, drop, opening."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from annotate.batches import selectors
from annotate.batches import services as batch_services
from annotate.batches.models import BatchStatus, Item, ItemStatus, Response, ResponseStatus
from annotate.batches.services import (
    batch_drop_failed_items,
    batch_retry_failed,
    batch_start_generation,
    config_rotation,
)
from annotate.core.errors import DomainError
from annotate.endpoints import services, store, tasks
from tests import factories
from tests.generation.conftest import draft_batch, make_configs
from tests.stub_openai import StubOpenAI


@pytest.fixture(autouse=True)
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batches whose fan-out task was sent (on commit); no broker is used here."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.generation_enqueue_batch, "delay", lambda batch_id: sent.append(batch_id))
    return sent


@pytest.fixture
def endpoint(db: None) -> Any:
    return factories.ModelEndpointFactory()


def configs_per_item(batch: Any) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {}
    for item_id, config_id in (
        Response.objects.filter(item__batch=batch)
        .order_by("item_id", "slot")
        .values_list("item_id", "sampling_config_id")
    ):
        result.setdefault(item_id, []).append(config_id)
    return result


@pytest.mark.django_db
def test_starting_creates_k_responses_per_item_from_different_configs(
    endpoint: Any, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    configs = make_configs(endpoint, 3)
    batch = draft_batch(6, configs, k=2)
    with django_capture_on_commit_callbacks(execute=True):
        started = batch_start_generation(batch_id=batch.pk)
    assert (started.responses_created, started.items_waiting, started.opened) == (12, 6, False)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.GENERATING
    assert enqueued == [batch.pk]
    per_item = configs_per_item(batch)
    assert all(len(set(ids)) == 2 for ids in per_item.values())
    assert (
        sorted(Response.objects.filter(item__batch=batch).values_list("slot", flat=True)) == [0] * 6 + [1] * 6
    )
    assert set(Counter(c for ids in per_item.values() for c in ids).values()) == {4}  # even load
    assert set(Response.objects.filter(item__batch=batch).values_list("status", flat=True)) == {"pending"}


@pytest.mark.django_db
def test_a_ranking_batch_spreads_its_configs(endpoint: Any) -> None:
    configs = make_configs(endpoint, 5)
    batch = draft_batch(10, configs, k=4)
    batch_start_generation(batch_id=batch.pk)
    per_item = configs_per_item(batch)
    assert all(len(set(ids)) == 4 for ids in per_item.values())
    assert set(Counter(c for ids in per_item.values() for c in ids).values()) == {8}


def test_the_rotation_pairs_every_config_with_every_other_and_balances_load() -> None:
    for n, k in [(4, 2), (5, 3), (6, 2), (6, 3), (9, 9), (3, 2)]:
        picks = [config_rotation(n, k, i) for i in range(n * n * 2)]
        assert all(len(set(p)) == k for p in picks), (n, k)
        load = Counter(itertools.chain.from_iterable(picks[: n * 3]))
        assert set(load.values()) == {3 * k}, (n, k)
        pairs = {frozenset(pair) for p in picks for pair in itertools.combinations(p, 2)}
        assert len(pairs) == n * (n - 1) // 2, (n, k)
    # Fewer configs than slots: repeats are unavoidable, the load stays even.
    picks = [config_rotation(2, 3, i) for i in range(4)]
    assert Counter(itertools.chain.from_iterable(picks)) == {0: 6, 1: 6}


@pytest.mark.django_db
def test_pre_generated_items_are_ready_at_once(endpoint: Any, enqueued: list[int]) -> None:
    batch = draft_batch(5, make_configs(endpoint, 2), pregenerated=3)
    started = batch_start_generation(batch_id=batch.pk)
    assert (started.responses_created, started.items_ready, started.items_waiting) == (4, 3, 2)
    statuses = Counter(Item.objects.filter(batch=batch).values_list("status", flat=True))
    assert statuses == {"ready": 3, "pending": 2}


@pytest.mark.django_db
def test_a_batch_of_pre_generated_items_opens_without_generation(
    enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    batch = draft_batch(3, [], pregenerated=3)
    with django_capture_on_commit_callbacks(execute=True):
        started = batch_start_generation(batch_id=batch.pk)
    batch.refresh_from_db()
    assert started.opened and batch.status == BatchStatus.OPEN and batch.opened_at is not None
    assert enqueued == []


@pytest.mark.django_db
def test_only_missing_slots_are_generated(endpoint: Any) -> None:
    configs = make_configs(endpoint, 3)
    batch = draft_batch(1, configs, k=3)
    item = batch.items.get()
    Response.objects.create(
        item=item, slot=1, model_name="imported", content="given", status="ok", generated_at=item.created_at
    )
    batch_start_generation(batch_id=batch.pk)
    rows = list(
        Response.objects.filter(item=item)
        .order_by("slot")
        .values_list("slot", "status", "sampling_config_id")
    )
    assert [(slot, status) for slot, status, _ in rows] == [(0, "pending"), (1, "ok"), (2, "pending")]
    assert rows[0][2] != rows[2][2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("no_items", "no_items"),
        ("no_configs", "no_sampling_config"),
        ("disabled", "no_sampling_config"),
        ("open", "invalid_transition"),
    ],
)
def test_starting_refuses_with_a_clear_message(endpoint: Any, setup: str, code: str) -> None:
    configs = make_configs(endpoint, 2)
    batch = draft_batch(0 if setup == "no_items" else 2, [] if setup == "no_configs" else configs)
    if setup == "disabled":
        endpoint.enabled = False
        endpoint.save()
    if setup == "open":
        batch.status = BatchStatus.OPEN
        batch.save()
    with pytest.raises(DomainError) as raised:
        batch_start_generation(batch_id=batch.pk)
    assert raised.value.code == code and raised.value.message
    assert not Response.objects.filter(item__batch=batch).exists()


@pytest.mark.django_db
def test_starting_again_only_re_enqueues(
    endpoint: Any, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    batch = draft_batch(2, make_configs(endpoint, 2))
    with django_capture_on_commit_callbacks(execute=True):
        batch_start_generation(batch_id=batch.pk)
        again = batch_start_generation(batch_id=batch.pk)
    assert again.responses_created == 0
    assert Response.objects.filter(item__batch=batch).count() == 4
    assert enqueued == [batch.pk, batch.pk]


def fail(response: Response, error: str = "Failed: HTTP 400") -> None:
    Response.objects.filter(pk=response.pk).update(status=ResponseStatus.FAILED, attempts=3, error=error)


def succeed(response: Response) -> None:
    Response.objects.filter(pk=response.pk).update(
        status=ResponseStatus.OK, content="x", generated_at=response.item.created_at
    )


@pytest.mark.django_db
def test_retrying_failed_responses_resets_and_requeues_them(
    endpoint: Any, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    batch = draft_batch(3, make_configs(endpoint, 2))
    batch_start_generation(batch_id=batch.pk)
    responses = list(Response.objects.filter(item__batch=batch).order_by("pk"))
    fail(responses[0])
    fail(responses[3])
    succeed(responses[1])
    with django_capture_on_commit_callbacks(execute=True):
        assert batch_retry_failed(batch_id=batch.pk) == 2
    assert enqueued == [batch.pk]
    for response in (responses[0], responses[3]):
        response.refresh_from_db()
        assert (response.status, response.attempts, response.error) == ("pending", 0, "")
    progress = selectors.batch_generation_progress(batch=batch)
    assert (progress.ok, progress.pending, progress.failed, progress.responses) == (1, 5, 0, 6)


@pytest.mark.django_db
def test_dropping_failed_items_opens_the_batch_when_the_rest_is_ready(endpoint: Any) -> None:
    batch = draft_batch(3, make_configs(endpoint, 2))
    batch_start_generation(batch_id=batch.pk)
    items = list(Item.objects.filter(batch=batch).order_by("pk"))
    for item in items[:2]:
        for response in item.responses.all():
            succeed(response)
        Item.objects.filter(pk=item.pk).update(status=ItemStatus.READY)
    bad = list(items[2].responses.all())
    fail(bad[0])
    succeed(bad[1])
    assert batch_drop_failed_items(batch_id=batch.pk) == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN and batch.opened_at is not None
    assert list(Item.objects.filter(batch=batch).order_by("pk").values_list("status", flat=True)) == [
        "ready",
        "ready",
        "dropped",
    ]
    progress = selectors.batch_progress(batch=batch)
    assert (progress.items_ready, progress.items_dropped) == (2, 1)
    # A dropped item's responses are never retried.
    assert batch_retry_failed(batch_id=batch.pk) == 0


@pytest.mark.django_db
def test_dropping_keeps_the_batch_generating_while_items_wait(endpoint: Any) -> None:
    batch = draft_batch(2, make_configs(endpoint, 2))
    batch_start_generation(batch_id=batch.pk)
    fail(Response.objects.filter(item__batch=batch).order_by("pk").first())
    assert batch_drop_failed_items(batch_id=batch.pk) == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.GENERATING


@pytest.mark.django_db(transaction=True)
def test_the_batch_opens_exactly_once_when_the_last_two_responses_finish_together(
    stub: StubOpenAI, allow_loopback: None, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=8)
    batch = draft_batch(2, make_configs(endpoint, 2))
    batch_start_generation(batch_id=batch.pk)
    responses = list(Response.objects.filter(item__batch=batch).order_by("item_id", "slot"))
    # All but the last response of each item are done already.
    for response in (responses[0], responses[2]):
        assert (
            services.response_generate(response_id=response.pk, deadline=time.monotonic() + 30).state == "ok"
        )

    # Both workers store their response and make their item ready (committed), then meet here, so that
    # their batch checks race as closely as possible.
    barrier = threading.Barrier(2, timeout=10)
    opened: list[bool] = []
    real_store = store.store_success
    real_open = batch_services.batch_open_if_ready

    def store_then_meet(job: store.Job, result: store.Generated) -> tuple[bool, bool]:
        outcome = real_store(job, result)
        barrier.wait()
        return outcome

    def record_open(*, batch_id: int) -> bool:
        result = real_open(batch_id=batch_id)
        opened.append(result)
        return result

    monkeypatch.setattr(store, "store_success", store_then_meet)
    monkeypatch.setattr(batch_services, "batch_open_if_ready", record_open)
    outcomes: list[str] = []

    def run(response: Response) -> None:
        try:
            outcomes.append(
                services.response_generate(response_id=response.pk, deadline=time.monotonic() + 30).state
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in (responses[1], responses[3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcomes == ["ok", "ok"]
    assert sorted(opened) == [False, True]  # both checked, exactly one opened the batch
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN


@pytest.mark.django_db(transaction=True)
def test_an_item_is_marked_ready_once_when_its_two_responses_finish_together(
    stub: StubOpenAI, allow_loopback: None, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    stub.latency_s = 0.3  # both requests in flight together, answers arrive together
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=8)
    batch = draft_batch(1, make_configs(endpoint, 2))
    batch_start_generation(batch_id=batch.pk)
    # Both requests are answered, then both workers store at the same instant.
    barrier = threading.Barrier(2, timeout=10)
    marked: list[bool] = []
    real_store = store.store_success

    def meet_then_store(job: store.Job, result: store.Generated) -> tuple[bool, bool]:
        barrier.wait()
        stored, ready = real_store(job, result)
        marked.append(ready)
        return stored, ready

    monkeypatch.setattr(store, "store_success", meet_then_store)

    def run(response_id: int) -> None:
        try:
            services.response_generate(response_id=response_id, deadline=time.monotonic() + 30)
        finally:
            connection.close()

    ids = list(Response.objects.filter(item__batch=batch).values_list("pk", flat=True))
    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert stub.peak_concurrency() == 2
    assert sorted(marked) == [False, True]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN


@pytest.mark.django_db
def test_the_admin_actions_run_the_lifecycle(
    staff_client: Client, endpoint: Any, enqueued: list[int]
) -> None:
    batch = draft_batch(2, make_configs(endpoint, 2))
    url = reverse("admin:batches_batch_changelist")

    def act(action: str) -> str:
        response = staff_client.post(url, {"action": action, "_selected_action": [batch.pk]}, follow=True)
        [message] = [str(m) for m in response.context["messages"]]
        return message

    message = act("start_generation")
    assert "4 response(s) created" in message and "Now generating: 0 ok, 4 pending, 0 failed" in message
    fail(Response.objects.filter(item__batch=batch).first())
    message = act("retry_failed_responses")
    assert "1 response(s) re-queued" in message
    fail(Response.objects.filter(item__batch=batch).first())
    message = act("drop_failed_items")
    assert "1 item(s) dropped" in message
    message = act("start_generation")
    assert message.startswith(batch.name)
    change = staff_client.get(reverse("admin:batches_batch_change", args=[batch.pk])).content.decode()
    assert "0 ok, 2 pending, 0 failed of 2 responses" in change


@pytest.mark.django_db(transaction=True)
def test_starting_with_the_broker_down_says_so_and_can_be_repeated(
    staff_client: Client, endpoint: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kombu.exceptions import OperationalError

    def broker_down(batch_id: int) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.generation_enqueue_batch, "delay", broker_down)
    batch = draft_batch(2, make_configs(endpoint, 2))
    url = reverse("admin:batches_batch_changelist")
    response = staff_client.post(
        url, {"action": "start_generation", "_selected_action": [batch.pk]}, follow=True
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert "broker is unreachable" in message
    batch.refresh_from_db()
    assert batch.status == BatchStatus.GENERATING  # committed; starting again re-queues
    sent: list[int] = []
    monkeypatch.setattr(tasks.generation_enqueue_batch, "delay", lambda batch_id: sent.append(batch_id))
    staff_client.post(url, {"action": "start_generation", "_selected_action": [batch.pk]})
    assert sent == [batch.pk]
