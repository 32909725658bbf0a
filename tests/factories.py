"""factory_boy factories for the domain, and helpers that build whole ready batches."""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from annotate.accounts.models import Qualification, User
from annotate.batches.models import Batch, BatchStatus, Item, ItemStatus, Response, ResponseStatus
from annotate.core.choices import Mode, Track
from annotate.endpoints.models import ModelEndpoint, SamplingConfig

PASSWORD = "test-pass-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


def annotator(username: str | None = None, tracks: list[str] | None = None, **kwargs: Any) -> User:
    user = UserFactory(**({"username": username} if username else {}), **kwargs)
    for track in tracks or [Track.HELPFULNESS]:
        Qualification.objects.get_or_create(
            user=user,
            track=track,
            defaults={"consented_at": timezone.now() if track == Track.SAFETY else None},
        )
    return user


class ModelEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelEndpoint

    name = factory.Sequence(lambda n: f"endpoint-{n}")
    base_url = "http://127.0.0.1:9/v1"
    model = "stub-model"


class SamplingConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SamplingConfig

    endpoint = factory.SubFactory(ModelEndpointFactory)
    label = factory.Sequence(lambda n: f"config-{n}")
    temperature = 0.7


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    name = factory.Sequence(lambda n: f"Batch {n}")
    track = Track.HELPFULNESS
    mode = Mode.PAIRWISE
    responses_per_item = 2
    overlap = 1
    status = BatchStatus.OPEN
    guidelines = "# Guidelines\n\nPick the more helpful response."


def conversation(n: int, turns: int = 1) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for t in range(turns):
        messages.append({"role": "user", "content": f"Question {n}, turn {t}: how do I do thing {n}?"})
        if t < turns - 1:
            messages.append({"role": "assistant", "content": f"Answer to turn {t} of {n}."})
    return messages


def ready_item(batch: Batch, n: int, **kwargs: Any) -> Item:
    """An item of `batch` with all K responses generated, open for claims."""
    item = Item.objects.create(
        batch=batch,
        conversation=kwargs.pop("conversation", None) or conversation(n),
        status=ItemStatus.READY,
        wanted=batch.overlap,
        **kwargs,
    )
    now = timezone.now()
    Response.objects.bulk_create(
        [
            Response(
                item=item,
                slot=slot,
                model_name=f"model-{slot}",
                content=f"Response {slot} to item {n}: **bold** text.",
                status=ResponseStatus.OK,
                generated_at=now,
            )
            for slot in range(batch.responses_per_item)
        ]
    )
    return item


def ready_batch(items: int = 10, **kwargs: Any) -> Batch:
    batch = BatchFactory(**kwargs)
    for n in range(items):
        ready_item(batch, n)
    return batch


# --- Helpers for the assignment and judgment tests --------------------------------------------------


def quick_annotator(username: str, tracks: list[str] | None = None) -> User:
    """An annotator without a usable password: no PBKDF2 round, for tests that need dozens of them."""
    return annotator(username=username, tracks=tracks, password=None)


def lapse_lease(assignment: Any, *, minutes_ago: int = 1) -> None:
    """Move a lease's expiry into the past, as if its annotator had walked away; a sweep may release it."""
    from datetime import timedelta

    from annotate.assignments.models import Assignment

    now = timezone.now()
    Assignment.objects.filter(pk=assignment.pk).update(
        leased_at=now - timedelta(minutes=minutes_ago + 30), expires_at=now - timedelta(minutes=minutes_ago)
    )


def pairwise_answer(assignment: Any, key: str, *, pick: int = 0, **fields: Any) -> Any:
    """A valid pairwise answer that prefers the response shown at position `pick` (0 = left)."""
    from annotate.judgments.services import JudgmentInput

    fields.setdefault("strength", "better")
    return JudgmentInput(idempotency_key=key, chosen=int(assignment.positions[pick]), **fields)


def ready_batch_bulk(items: int, **kwargs: Any) -> Batch:
    """Like `ready_batch`, in two INSERTs: for the tests that need hundreds of items."""
    from annotate.batches.services import NewItem, items_add

    batch = BatchFactory(**kwargs)
    k = batch.responses_per_item
    new_items = [
        NewItem(
            conversation=conversation(n),
            responses=[(f"model-{slot}", f"Response {slot} to item {n}.") for slot in range(k)],
        )
        for n in range(items)
    ]
    assert items_add(batch=batch, new_items=new_items).created == items
    return batch


def generate_pending(item_id: int, *, only: int | None = None, timeout: float = 30.0) -> None:
    """Deliver the generation of an item's pending responses in process, as a worker would (the real
    task service against whatever endpoint the configs name), honouring the re-queue waits it asks for
    (a busy endpoint slot, a transient error). `only`: the first n pending responses, by slot."""
    import time

    from annotate.endpoints.services import response_generate

    pending = Response.objects.filter(item_id=item_id, status=ResponseStatus.PENDING).order_by("slot")
    deadline = time.monotonic() + timeout
    for response_id in list(pending.values_list("pk", flat=True))[:only]:
        while True:
            outcome = response_generate(response_id=response_id, deadline=time.monotonic() + timeout)
            if outcome.retry_in_s is None or time.monotonic() > deadline:
                break
            time.sleep(min(outcome.retry_in_s, 1.0))
