"""Batch generation in chunks: how a batch's responses are split into tasks, and one delivery of a chunk
in process against the stub (each response with its own slot, attempt and write; throttles and faults put
the rest of the chunk back)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from celery.exceptions import Retry

from annotate.batches.models import Batch, BatchStatus, ItemStatus, Response, ResponseStatus
from annotate.batches.services import batch_start_generation
from annotate.endpoints import limits, services, tasks
from annotate.endpoints.models import ModelEndpoint
from tests import factories
from tests.generation.conftest import draft_batch, make_configs
from tests.stub_openai import Call, Reply, StubOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(tasks.generation_enqueue_batch, "delay", lambda batch_id: sent.append(batch_id))
    return sent


@pytest.fixture
def endpoint(stub: StubOpenAI, allow_loopback: None, redis_client: Any) -> ModelEndpoint:
    return factories.ModelEndpointFactory(base_url=stub.base_url, model="stub-7b", timeout_s=1.0)


def started(endpoint: ModelEndpoint, items: int) -> Batch:
    batch = draft_batch(items, make_configs(endpoint, 2))
    batch_start_generation(batch_id=batch.pk)
    return batch


def ids_of(batch: Batch) -> list[int]:
    return list(
        Response.objects.filter(item__batch=batch).order_by("item_id", "pk").values_list("pk", flat=True)
    )


def deliver(ids: list[int], seconds: float = 30) -> services.ChunkOutcome:
    return services.responses_generate(response_ids=ids, deadline=time.monotonic() + seconds)


# --- Splitting --------------------------------------------------------------------------------------------


def test_chunks_hold_one_endpoint_each_keep_items_together_and_are_capped(
    stub: StubOpenAI, allow_loopback: None, settings: Any
) -> None:
    settings.GENERATION_CHUNK_SIZE = 4
    a = factories.ModelEndpointFactory(base_url=stub.endpoint_url("a"), max_concurrency=1)
    b = factories.ModelEndpointFactory(base_url=stub.endpoint_url("b"), max_concurrency=1)
    batch = draft_batch(30, [*make_configs(a, 2), *make_configs(b, 2)])
    batch_start_generation(batch_id=batch.pk)
    chunks = list(services.generation_chunks(batch_id=batch.pk))

    responses = {
        r.pk: r for r in Response.objects.filter(item__batch=batch).select_related("sampling_config")
    }
    assert sorted(pk for chunk in chunks for pk in chunk) == sorted(responses)  # each once
    for chunk in chunks:
        assert len({responses[pk].sampling_config.endpoint_id for pk in chunk}) == 1
        assert 1 <= len(chunk) <= 4
    # An item's responses on the same endpoint are never split between chunks.
    chunk_of = {pk: n for n, chunk in enumerate(chunks) for pk in chunk}
    by_item_endpoint: dict[tuple[int, int], set[int]] = {}
    for pk, r in responses.items():
        by_item_endpoint.setdefault((r.item_id, r.sampling_config.endpoint_id), set()).add(chunk_of[pk])
    assert all(len(n) == 1 for n in by_item_endpoint.values())


def test_small_backlogs_get_smaller_chunks(endpoint: ModelEndpoint, settings: Any) -> None:
    # 40 responses on a limit of 5: at least about four chunks per slot, so chunks of ceil(40 / 20) = 2.
    settings.GENERATION_CHUNK_SIZE = 16
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(max_concurrency=5)
    batch = started(endpoint, items=20)
    assert [len(c) for c in services.generation_chunks(batch_id=batch.pk)] == [2] * 20
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(max_concurrency=1)
    assert [len(c) for c in services.generation_chunks(batch_id=batch.pk)] == [10] * 4


def test_only_pending_responses_of_waiting_items_are_sent(endpoint: ModelEndpoint, settings: Any) -> None:
    batch = started(endpoint, items=3)
    first, second, _third = batch.items.order_by("pk")
    Response.objects.filter(item=first).update(status=ResponseStatus.FAILED)
    second.status = ItemStatus.DROPPED
    second.save(update_fields=["status"])
    sent = [pk for chunk in services.generation_chunks(batch_id=batch.pk) for pk in chunk]
    assert sorted(sent) == sorted(Response.objects.filter(item=_third).values_list("pk", flat=True))


def test_the_fan_out_sends_one_task_per_chunk(
    endpoint: ModelEndpoint, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.GENERATION_CHUNK_SIZE = 4
    batch = started(endpoint, items=40)  # 80 responses, limit 4: chunks of 4
    sent: list[list[int]] = []
    monkeypatch.setattr(
        tasks.responses_generate, "apply_async", lambda args, **kwargs: sent.append(list(args[0]))
    )
    assert services.generation_enqueue_batch(batch_id=batch.pk) == 20
    assert sorted(pk for chunk in sent for pk in chunk) == sorted(ids_of(batch))


# --- One delivery of a chunk ------------------------------------------------------------------------------


def test_a_chunk_stores_every_response_once_and_opens_the_batch(
    endpoint: ModelEndpoint, stub: StubOpenAI
) -> None:
    batch = started(endpoint, items=3)
    ids = ids_of(batch)
    outcome = deliver(ids)
    assert outcome.state == "done" and outcome.states == {"ok": 6}
    assert set(Response.objects.filter(item__batch=batch).values_list("status", "attempts")) == {
        (ResponseStatus.OK, 1)
    }
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN
    # A second delivery of the same chunk calls nothing and stores nothing.
    assert deliver(ids).states == {"skipped": 6}
    assert len(stub.records) == 6 and set(stub.completions().values()) == {1}


def test_a_transient_fault_does_not_stop_the_chunk(endpoint: ModelEndpoint, stub: StubOpenAI) -> None:
    batch = started(endpoint, items=2)
    ids = ids_of(batch)
    faulty = str(Response.objects.get(pk=ids[1]).request_id)
    stub.handler = lambda c: Reply.error(500) if c.request_id == faulty else None
    outcome = deliver(ids)
    assert outcome.state == "retry" and outcome.again == [ids[1]]
    assert outcome.retry_in_s is not None and outcome.retry_in_s > 0
    statuses = dict(Response.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert [statuses[pk] for pk in ids] == [
        ResponseStatus.OK,
        ResponseStatus.PENDING,
        ResponseStatus.OK,
        ResponseStatus.OK,
    ]
    assert Response.objects.get(pk=ids[1]).error.startswith("Attempt 1 failed, will retry")


def test_a_429_puts_the_rest_of_the_chunk_back_without_using_their_attempts(
    endpoint: ModelEndpoint, stub: StubOpenAI
) -> None:
    batch = started(endpoint, items=2)
    ids = ids_of(batch)
    throttled = str(Response.objects.get(pk=ids[1]).request_id)

    def handler(call: Call) -> Reply | None:
        return Reply.rate_limited("4") if call.request_id == throttled else None

    stub.handler = handler
    outcome = deliver(ids)
    assert outcome.state == "retry" and outcome.again == ids[1:]
    assert 4.0 <= outcome.retry_in_s <= 5.1  # the server's Retry-After, plus jitter
    attempts = dict(Response.objects.filter(pk__in=ids).values_list("pk", "attempts"))
    assert [attempts[pk] for pk in ids] == [1, 1, 0, 0]
    assert len(stub.records) == 2
    stub.handler = None
    assert deliver(outcome.again).states == {"ok": 3}


def test_a_full_endpoint_puts_the_chunk_back(
    endpoint: ModelEndpoint, stub: StubOpenAI, settings: Any
) -> None:
    settings.GENERATION_SLOT_WAIT_MS = 100
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(max_concurrency=1)
    batch = started(endpoint, items=2)
    ids = ids_of(batch)
    held = limits.get_limits().acquire(endpoint_id=endpoint.pk, limit=1, rpm=None, ttl_s=30, wait_s=0)
    try:
        outcome = deliver(ids)
    finally:
        limits.get_limits().release(held)
    assert outcome.state == "retry" and outcome.again == ids and outcome.states == {"throttled": 1}
    assert not Response.objects.filter(pk__in=ids, attempts__gt=0).exists() and stub.records == []


def test_no_request_starts_without_its_full_timeout_before_the_deadline(
    endpoint: ModelEndpoint, stub: StubOpenAI
) -> None:
    # The endpoint's timeout is 1 s: with 1.5 s left the first request goes out, the second would have
    # less than its timeout left after it and waits for the next delivery instead.
    stub.latency_s = 0.6
    batch = started(endpoint, items=2)
    ids = ids_of(batch)
    outcome = deliver(ids, seconds=1.5)
    assert outcome.state == "retry" and outcome.again == ids[1:]
    assert Response.objects.get(pk=ids[0]).status == ResponseStatus.OK
    assert not Response.objects.filter(pk__in=ids[1:], attempts__gt=0).exists()


def test_a_response_in_flight_elsewhere_is_left_to_that_delivery(
    endpoint: ModelEndpoint, stub: StubOpenAI
) -> None:
    batch = started(endpoint, items=1)
    ids = ids_of(batch)
    lease = limits.get_limits().acquire(
        endpoint_id=endpoint.pk, limit=16, rpm=None, ttl_s=30, wait_s=0, holder=f"response:{ids[0]}"
    )
    try:
        outcome = deliver(ids)
    finally:
        limits.get_limits().release(lease)
    assert outcome.state == "retry" and outcome.again == [ids[0]] and outcome.states == {"busy": 1, "ok": 1}
    assert Response.objects.get(pk=ids[0]).attempts == 0 and len(stub.records) == 1


def test_the_chunk_task_requeues_what_is_left(
    endpoint: ModelEndpoint, stub: StubOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = started(endpoint, items=2)
    ids = ids_of(batch)
    faulty = str(Response.objects.get(pk=ids[2]).request_id)
    stub.handler = lambda c: Reply.error(503) if c.request_id == faulty else None
    retried: dict[str, Any] = {}

    def retry(**kwargs: Any) -> Retry:
        retried.update(kwargs)
        return Retry()

    monkeypatch.setattr(tasks.responses_generate, "retry", retry)
    with pytest.raises(Retry):
        tasks.responses_generate(ids)
    assert retried["args"] == ([ids[2]],) and retried["countdown"] > 0
    stub.handler = None
    assert tasks.responses_generate(retried["args"][0]) == "done"
    assert not Response.objects.filter(pk__in=ids).exclude(status=ResponseStatus.OK).exists()


def test_the_chunk_task_records_an_unexpected_error_on_its_pending_responses(endpoint: ModelEndpoint) -> None:
    batch = started(endpoint, items=2)
    ids = ids_of(batch)
    deliver(ids[:1])
    tasks.responses_generate.on_failure(ValueError("boom"), "task-id", (ids,), {}, None)
    statuses = dict(Response.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses[ids[0]] == ResponseStatus.OK
    assert all(statuses[pk] == ResponseStatus.FAILED for pk in ids[1:])
    assert Response.objects.get(pk=ids[1]).error == "Internal error: ValueError: boom"


def test_storing_twice_stores_once_and_readies_the_item_once(endpoint: ModelEndpoint) -> None:
    from django.utils import timezone

    from annotate.endpoints import store

    batch = started(endpoint, items=1)
    first, second = (store.load_job(pk) for pk in ids_of(batch))
    assert first is not None and second is not None

    def generated(text: str) -> store.Generated:
        return store.Generated(text, f"<p>{text}</p>", "m", 100, 1, 1, timezone.now())

    assert store.store_success(first, generated("one")) == (True, False)  # the item waits for the other
    assert store.store_success(first, generated("again")) == (False, False)
    assert store.store_success(second, generated("two")) == (True, True)
    assert store.store_success(second, generated("late")) == (False, False)
    contents = sorted(Response.objects.filter(item__batch=batch).values_list("content", flat=True))
    assert contents == ["one", "two"]
    assert batch.items.get().status == ItemStatus.READY
