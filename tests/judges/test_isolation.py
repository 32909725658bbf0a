"""AI judgments stay apart from human work: never counted in the overlap, never shown in the workbench,
and AI users never claim."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotate.assignments import services as assignments
from annotate.assignments.services import NotFound
from annotate.batches.models import Item
from annotate.batches.selectors import batch_progress, batches_with_progress
from annotate.judges import services
from annotate.judges.models import Judge
from annotate.judgments.models import Judgment
from tests.judges.conftest import drive, varied_batch
from tests.stub_openai import JudgeRequest, JudgeScript

pytestmark = pytest.mark.django_db
SECRET = "AI-RATIONALE-4f1c: the judge thinks B"


def judged_batch(judge: Judge, script: JudgeScript, items: int = 2, **fields: Any) -> Any:
    default = script.default
    script.default = lambda r: {**default(r), "rationale": SECRET}
    batch = varied_batch(items, **fields)
    run = services.judge_run_start(judge_id=judge.pk, batch_id=batch.pk)
    drive(run)
    assert Judgment.objects.filter(batch=batch, annotator=run.version.user).count() == items
    return batch, run


def test_ai_judgments_never_count_toward_the_human_overlap(
    judge: Judge, script: JudgeScript, enqueued: list[int], annotator: Any, other_annotator: Any
) -> None:
    batch, _run = judged_batch(judge, script, items=2, overlap=1)
    assert batch_progress(batch=batch).judgments_done == 0
    assert batches_with_progress().get(pk=batch.pk).n_judgments == 0
    # Both items are still open to humans: overlap 1 means one human each, AI verdicts notwithstanding.
    first = assignments.assignment_claim_next(annotator=annotator, batch_id=batch.pk)
    second = assignments.assignment_claim_next(annotator=other_annotator, batch_id=batch.pk)
    assert first is not None and second is not None and first.item_id != second.item_id
    assert set(Item.objects.filter(batch=batch).values_list("wanted", "taken")) == {(1, 1)}


def test_the_workbench_never_shows_an_ai_verdict_and_ai_users_never_claim(
    judge: Judge, script: JudgeScript, enqueued: list[int], annotator_client: Client
) -> None:
    batch, run = judged_batch(judge, script, items=1)
    annotator_client.post(reverse("workbench:guidelines", args=[batch.pk]))
    page = annotator_client.get(reverse("workbench:batch", args=[batch.pk]), follow=True)
    body = page.content.decode()
    assert page.status_code == 200 and 'data-assignment="' in body
    assert SECRET not in body and run.version.label not in body and "ai-judgy" not in body
    api = annotator_client.get("/api/v1/judgments/")
    assert api.status_code == 200 and SECRET not in api.content.decode()

    ai_user = run.version.user
    with pytest.raises(NotFound):
        assignments.assignment_claim_next(annotator=ai_user, batch_id=batch.pk)
    assert not Client().login(username=ai_user.username, password="")


def test_the_stub_script_sees_each_item_in_both_orders(
    judge: Judge, script: JudgeScript, enqueued: list[int]
) -> None:
    seen: list[tuple[str, ...]] = []

    def record(request: JudgeRequest) -> None:
        seen.append(tuple(request.responses.values()))

    script.decide = record
    _batch, _run = judged_batch(judge, script, items=1)
    assert len(seen) == 2 and seen[0] == tuple(reversed(seen[1]))
