"""One delivery of the generation task, in process against the stub: storage, idempotency, retries,
attempt limits and endpoint slots."""

from __future__ import annotations

import time
from typing import Any

import pytest
from celery.exceptions import Retry

from annotate.batches.models import Batch, BatchStatus, Item, ItemStatus, Response, ResponseStatus
from annotate.batches.services import batch_start_generation
from annotate.endpoints import limits, services, tasks
from annotate.endpoints.models import ModelEndpoint
from tests import factories
from tests.generation.conftest import draft_batch, make_configs
from tests.stub_openai import Reply, StubOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Starting generation enqueues the fan-out task on commit; here deliveries are run by hand."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.generation_enqueue_batch, "delay", lambda batch_id: sent.append(batch_id))
    return sent


@pytest.fixture
def endpoint(stub: StubOpenAI, allow_loopback: None, redis_client: Any) -> ModelEndpoint:
    return factories.ModelEndpointFactory(base_url=stub.base_url, model="stub-7b", timeout_s=1.0)


def started_batch(endpoint: ModelEndpoint, items: int = 2, **fields: Any) -> Batch:
    batch = draft_batch(items, make_configs(endpoint, 2), **fields)
    batch_start_generation(batch_id=batch.pk)
    return batch


def deliver(response: Response) -> services.Outcome:
    return services.response_generate(response_id=response.pk, deadline=time.monotonic() + 30)


def test_a_delivery_stores_the_response(endpoint: ModelEndpoint, stub: StubOpenAI) -> None:
    stub.handler = lambda c: Reply.ok("A **bold** answer.", prompt_tokens=12, completion_tokens=3)
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    assert deliver(response).state == "ok"
    response.refresh_from_db()
    assert response.status == ResponseStatus.OK
    assert response.content == "A **bold** answer."
    assert "<strong>bold</strong>" in response.content_html
    assert response.model_name == "stub-7b"
    assert (response.prompt_tokens, response.completion_tokens) == (12, 3)
    assert response.latency_ms is not None and response.generated_at is not None
    assert response.attempts == 1 and response.error == ""
    assert stub.records[0].request_id == str(response.request_id)


def test_the_item_is_ready_and_the_batch_opens_with_the_last_response(endpoint: ModelEndpoint) -> None:
    batch = started_batch(endpoint, items=2)
    responses = list(Response.objects.filter(item__batch=batch).order_by("item_id", "slot"))
    for response in responses[:3]:
        deliver(response)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.GENERATING
    assert list(Item.objects.filter(batch=batch).values_list("status", flat=True)) == ["ready", "pending"]
    deliver(responses[3])
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN and batch.opened_at is not None
    assert set(Item.objects.filter(batch=batch).values_list("status", flat=True)) == {"ready"}


def test_a_second_delivery_leaves_an_ok_response_alone(endpoint: ModelEndpoint, stub: StubOpenAI) -> None:
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    deliver(response)
    response.refresh_from_db()
    before = (response.content, response.generated_at, response.attempts)
    assert deliver(response).state == "skipped"
    response.refresh_from_db()
    assert (response.content, response.generated_at, response.attempts) == before
    assert len(stub.records) == 1


def test_a_delivery_while_another_is_in_flight_comes_back_later(
    endpoint: ModelEndpoint, stub: StubOpenAI
) -> None:
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    held = limits.get_limits().acquire(
        endpoint_id=endpoint.pk, limit=8, rpm=None, ttl_s=30, wait_s=0, holder=f"response:{response.pk}"
    )
    assert isinstance(held, limits.Slot)
    try:
        outcome = deliver(response)
    finally:
        limits.get_limits().release(held)
    assert outcome.state == "busy" and outcome.retry_in_s is not None
    response.refresh_from_db()
    assert response.attempts == 0 and response.status == ResponseStatus.PENDING
    assert stub.records == []


@pytest.mark.parametrize("fault", [Reply.error(503), Reply.error(500), Reply.reset(), Reply.slow(4.0)])
def test_a_transient_fault_is_retried_with_backoff(
    endpoint: ModelEndpoint, stub: StubOpenAI, fault: Reply, settings: Any
) -> None:
    settings.GENERATION_BACKOFF_BASE_MS = 4000
    stub.handler = lambda c: fault
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    outcome = deliver(response)
    assert outcome.state == "retry"
    assert 2.0 <= outcome.retry_in_s <= 4.0  # first retry: base/2 .. base
    response.refresh_from_db()
    assert response.status == ResponseStatus.PENDING and response.attempts == 1
    assert response.error.startswith("Attempt 1 failed, will retry")


def test_retry_after_is_honoured(endpoint: ModelEndpoint, stub: StubOpenAI, settings: Any) -> None:
    settings.GENERATION_BACKOFF_BASE_MS = 100
    stub.handler = lambda c: Reply.rate_limited("7")
    batch = started_batch(endpoint, items=1)
    outcome = deliver(Response.objects.filter(item__batch=batch).first())
    assert outcome.state == "retry" and 7.0 <= outcome.retry_in_s <= 7.2


@pytest.mark.parametrize(
    "fault", [Reply.error(400), Reply.error(404), Reply.malformed(), Reply.redirect("/x")]
)
def test_a_permanent_fault_fails_at_once(endpoint: ModelEndpoint, stub: StubOpenAI, fault: Reply) -> None:
    stub.handler = lambda c: fault
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    assert deliver(response).state == "failed"
    response.refresh_from_db()
    assert response.status == ResponseStatus.FAILED and response.error.startswith("Failed: ")
    assert len(stub.records) == 1


def test_the_last_attempt_fails_the_response(
    endpoint: ModelEndpoint, stub: StubOpenAI, settings: Any
) -> None:
    stub.handler = lambda c: Reply.error(503, "still down")
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    Response.objects.filter(pk=response.pk).update(attempts=settings.GENERATION_MAX_ATTEMPTS - 1)
    assert deliver(response).state == "failed"
    response.refresh_from_db()
    assert response.status == ResponseStatus.FAILED
    assert response.error.startswith(f"Failed after {settings.GENERATION_MAX_ATTEMPTS} attempts: HTTP 503")


def test_a_poison_task_ends_failed_without_another_request(
    endpoint: ModelEndpoint, stub: StubOpenAI, settings: Any
) -> None:
    # Its attempts were all claimed by deliveries that never finished (each killed its worker, say).
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    Response.objects.filter(pk=response.pk).update(attempts=settings.GENERATION_MAX_ATTEMPTS)
    assert deliver(response).state == "failed"
    response.refresh_from_db()
    assert response.status == ResponseStatus.FAILED and response.error.startswith("Gave up after")
    assert stub.records == []


def test_a_busy_endpoint_requeues_without_using_an_attempt(
    endpoint: ModelEndpoint, stub: StubOpenAI, settings: Any
) -> None:
    settings.GENERATION_SLOT_WAIT_MS = 200
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(max_concurrency=1)
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    held = limits.get_limits().acquire(endpoint_id=endpoint.pk, limit=1, rpm=None, ttl_s=30, wait_s=0)
    assert isinstance(held, limits.Slot)
    try:
        outcome = deliver(response)
    finally:
        limits.get_limits().release(held)
    assert outcome.state == "throttled" and outcome.retry_in_s is not None
    response.refresh_from_db()
    assert response.attempts == 0 and response.status == ResponseStatus.PENDING
    assert stub.records == []
    assert deliver(response).state == "ok"


def test_responses_of_dropped_items_are_not_generated(endpoint: ModelEndpoint, stub: StubOpenAI) -> None:
    batch = started_batch(endpoint, items=1)
    Item.objects.filter(batch=batch).update(status=ItemStatus.DROPPED)
    assert deliver(Response.objects.filter(item__batch=batch).first()).state == "skipped"
    assert stub.records == []


def test_a_disabled_endpoint_fails_the_response_visibly(endpoint: ModelEndpoint, stub: StubOpenAI) -> None:
    batch = started_batch(endpoint, items=1)
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False)
    response = Response.objects.filter(item__batch=batch).first()
    assert deliver(response).state == "failed"
    response.refresh_from_db()
    assert "disabled" in response.error and stub.records == []


def test_the_task_requeues_itself_for_a_transient_fault(endpoint: ModelEndpoint, stub: StubOpenAI) -> None:
    stub.handler = lambda c: Reply.error(503)
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    with pytest.raises(Retry):
        tasks.response_generate(response.pk)
    stub.handler = None
    assert tasks.response_generate(response.pk) == "ok"


def test_the_task_records_an_unexpected_error_on_the_response(endpoint: ModelEndpoint) -> None:
    batch = started_batch(endpoint, items=1)
    response = Response.objects.filter(item__batch=batch).first()
    tasks.response_generate.on_failure(ValueError("boom"), "task-id", (response.pk,), {}, None)
    response.refresh_from_db()
    assert response.status == ResponseStatus.FAILED and response.error == "Internal error: ValueError: boom"


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings: Any) -> None:
    settings.GENERATION_BACKOFF_BASE_MS = 1000
    settings.GENERATION_BACKOFF_MAX_S = 10
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        delays = [services.backoff_s(attempt) for _ in range(200)]
        assert min(delays) >= ceiling / 2 and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not a fixed delay
    assert 30 <= services.backoff_s(1, retry_after_s=30) <= 31
