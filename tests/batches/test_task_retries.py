"""The batch tasks outside generation (`generation_enqueue_batch`, `responses_render`) retry a database
outage with backoff, as the generation tasks do, instead of failing for good (a PostgreSQL restart while
they ran used to leave a batch generating with nothing queued, or its responses unrendered)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection

from annotate.batches import tasks as batch_tasks
from annotate.batches.models import BatchStatus, Item, ItemStatus, Response, ResponseStatus
from annotate.endpoints import tasks as endpoint_tasks
from tests import factories

pytestmark = pytest.mark.django_db


class Outage:
    """The first `fail` queries raise OperationalError, as with a PostgreSQL that went away."""

    def __init__(self, fail: int) -> None:
        self.fail, self.failed, self.passed = fail, 0, 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.failed < self.fail:
            self.failed += 1
            raise OperationalError("server closed the connection unexpectedly")
        self.passed += 1
        return execute(sql, params, many, context)


@pytest.fixture
def outage() -> Iterator[Outage]:
    fault = Outage(fail=0)  # the test sets it once its rows exist
    with connection.execute_wrapper(fault):
        yield fault


@pytest.fixture
def quick_backoff(settings: Any) -> None:
    settings.GENERATION_BACKOFF_BASE_MS = 10
    settings.GENERATION_BACKOFF_MAX_S = 1


def test_responses_render_retries_a_database_outage(outage: Outage, quick_backoff: None) -> None:
    item = factories.ready_item(factories.BatchFactory(status=BatchStatus.OPEN), 0)
    Response.objects.filter(item=item).update(content="**bold**", content_html="")
    outage.fail, outage.failed = 2, 0

    result = batch_tasks.responses_render.apply(args=(item.batch_id,))

    assert result.successful(), result.traceback
    assert outage.failed == 2 and outage.passed > 0
    assert set(Response.objects.filter(item=item).values_list("content_html", flat=True)) == {
        "<p><strong>bold</strong></p>\n"
    }


def test_responses_render_gives_up_only_on_other_errors(quick_backoff: None) -> None:
    """A bug is not retried forever: only the infrastructure errors are."""

    def broken(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        raise ValueError("a bug")

    with connection.execute_wrapper(broken):
        result = batch_tasks.responses_render.apply(args=(1,))
    assert result.failed() and isinstance(result.result, ValueError)


def test_generation_enqueue_batch_retries_a_database_outage(
    outage: Outage, quick_backoff: None, redis_client: Any
) -> None:
    import redis
    from django.conf import settings

    endpoint = factories.ModelEndpointFactory()
    config = factories.SamplingConfigFactory(endpoint=endpoint)
    item = factories.ready_item(factories.BatchFactory(status=BatchStatus.GENERATING), 0)
    Response.objects.filter(item=item).update(status=ResponseStatus.PENDING, sampling_config=config)
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.PENDING)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(settings.GENERATION_QUEUE)
    outage.fail, outage.failed = 3, 0

    result = endpoint_tasks.generation_enqueue_batch.apply(args=(item.batch_id,))

    assert result.successful(), result.traceback
    assert result.result == 1  # one chunk with both responses
    assert outage.failed == 3
    assert broker.llen(settings.GENERATION_QUEUE) == 1
    broker.delete(settings.GENERATION_QUEUE)
