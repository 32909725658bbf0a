"""The stale-work sweep (beat: requeue-stale-work) sends again the generation and export work whose task
was lost, once per threshold, and leaves moving work alone. Messages go to the real (test) broker and are
read back from its queues."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from annotate.batches.models import Batch, BatchStatus, Item, ItemStatus, Response, ResponseStatus
from annotate.core.tasks import requeue_stale_work
from annotate.exports.models import ExportJob
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker(redis_client: Any) -> Any:
    """The test broker, its queues emptied before and after."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs the Redis broker (CELERY_BROKER_URL)")
    client.delete("generation", "exports", "default")
    yield client
    client.delete("generation", "exports", "default")


def sent(broker: Any, queue: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of the messages waiting in `queue`, oldest first."""
    out = []
    for raw in reversed(broker.lrange(queue, 0, -1)):
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], body[0]))
    return out


def generating_batch(minutes_ago: float) -> Batch:
    """A generating batch whose one item waits for its two pending responses, last touched back then."""
    config = factories.SamplingConfigFactory(endpoint=factories.ModelEndpointFactory())
    batch = factories.BatchFactory(status=BatchStatus.GENERATING)
    item = factories.ready_item(batch, 0)
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.PENDING)
    Response.objects.filter(item=item).update(
        status=ResponseStatus.PENDING,
        sampling_config=config,
        touched_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    return batch


def test_a_stalled_generating_batch_is_enqueued_again_once_per_threshold(broker: Any) -> None:
    stalled = generating_batch(minutes_ago=30)
    moving = generating_batch(minutes_ago=1)

    report = requeue_stale_work()

    assert report["batches_requeued"] == [stalled.pk]
    assert sent(broker, "generation") == [("annotate.endpoints.tasks.generation_enqueue_batch", [stalled.pk])]
    # Touched by the sweep: the next sweeps leave it alone until another threshold has passed.
    assert requeue_stale_work()["batches_requeued"] == []
    assert len(sent(broker, "generation")) == 1
    assert (
        Response.objects.filter(
            item__batch=moving, touched_at__lt=timezone.now() - timedelta(minutes=2)
        ).count()
        == 0
    )


def test_the_requeued_batch_is_generated_by_the_task(broker: Any) -> None:
    """The message the sweep sends is the ordinary fan-out: run it, and the chunk task is queued."""
    from annotate.endpoints.tasks import generation_enqueue_batch

    batch = generating_batch(minutes_ago=30)
    requeue_stale_work()
    assert generation_enqueue_batch.apply(args=(batch.pk,)).result == 1
    names = [name for name, _ in sent(broker, "generation")]
    assert names == [
        "annotate.endpoints.tasks.generation_enqueue_batch",
        "annotate.endpoints.tasks.responses_generate",
    ]


def test_a_generating_batch_with_nothing_waiting_is_opened() -> None:
    batch = factories.BatchFactory(status=BatchStatus.GENERATING)
    factories.ready_item(batch, 0)

    assert requeue_stale_work()["batches_opened"] == [batch.pk]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN and batch.opened_at is not None


def test_a_failed_response_put_back_to_pending_is_not_stale_at_once(broker: Any) -> None:
    from annotate.batches.services import batch_retry_failed

    batch = generating_batch(minutes_ago=30)
    Response.objects.filter(item__batch=batch).update(status=ResponseStatus.FAILED)
    batch_retry_failed(batch_id=batch.pk)
    broker.delete("generation")
    assert requeue_stale_work()["batches_requeued"] == []


def test_an_export_left_queued_is_sent_again_once_per_threshold(broker: Any) -> None:
    old = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    ExportJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")  # just requested

    assert requeue_stale_work()["exports_requeued"] == [old.pk]
    assert sent(broker, "exports") == [("annotate.exports.tasks.build_export", [old.pk])]
    assert requeue_stale_work()["exports_requeued"] == []


def test_the_sweep_is_scheduled() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["requeue-stale-work"]
    assert entry["task"] == "annotate.core.tasks.requeue_stale_work"
    assert entry["schedule"] == float(settings.STALE_WORK_SWEEP_S)
    assert settings.STALE_WORK_AFTER_S > settings.CELERY_TASK_TIME_LIMIT
