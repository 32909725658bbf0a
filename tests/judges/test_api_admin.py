"""The judge-runs API, the admin pages (start, preview, figures), and triage."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotate.batches.models import Item
from annotate.judges import services
from annotate.judges.models import Judge, JudgeRun, TriageDecision
from tests.api.conftest import make_token, token_client
from tests.judges.conftest import drive, human_judges, varied_batch
from tests.stub_openai import JudgeScript

pytestmark = pytest.mark.django_db


def test_the_api_starts_a_run_reports_progress_and_stats(
    judge: Judge, enqueued: list[int], batch_admin: Any, annotator: Any
) -> None:
    batch = varied_batch(4)
    api = token_client(make_token(batch_admin))
    created = api.post(
        "/api/v1/judge-runs/",
        {"judge": judge.pk, "batch": batch.pk, "sample_size": 3, "seed": 9},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["items_total"] == 3 and body["verdicts"] == {"total": 6, "pending": 6, "ok": 0, "failed": 0}
    assert body["source"] == "ai:judgy@v1" and body["seed"] == 9
    drive(JudgeRun.objects.get(pk=body["id"]))
    progress = api.get(f"/api/v1/judge-runs/{body['id']}/").json()
    assert progress["status"] == "done" and progress["percent"] == 100.0 and progress["ai_judgments"] == 3
    stats = api.get(f"/api/v1/judge-runs/{body['id']}/stats/")
    assert stats.status_code == 200 and stats.json()["position_consistency"]["rate"] == 1.0
    assert api.get("/api/v1/judge-runs/").json()["count"] == 1

    # Annotators see no runs at all.
    assert token_client(make_token(annotator)).get(f"/api/v1/judge-runs/{body['id']}/").status_code in (
        403,
        404,
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"batch": 1}, "judge"),
        ({"judge": 1, "batch": 1, "sample_size": 0}, "sample_size"),
        ({"judge": 1, "batch": 1, "colour": "red"}, "colour"),
        ({"judge": 1, "batch": 999999}, "batch"),
        ({"judge": 1, "batch": 1, "triage": True, "triage_ceiling": 1}, "triage_ceiling"),
    ],
)
def test_bad_run_requests_are_400_naming_the_field(
    judge: Judge, enqueued: list[int], batch_admin: Any, payload: dict[str, Any], field: str
) -> None:
    batch = varied_batch(1)
    payload = {
        k: (judge.pk if k == "judge" else batch.pk if k == "batch" and v == 1 else v)
        for k, v in payload.items()
    }
    response = token_client(make_token(batch_admin)).post("/api/v1/judge-runs/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not JudgeRun.objects.exists()


def test_admin_pages_start_preview_and_show_figures(
    judge: Judge, enqueued: list[int], staff_client: Client
) -> None:
    batch = varied_batch(2)
    item = batch.items.first()
    item.conversation = [{"role": "user", "content": "<script>alert(1)</script> question"}]
    item.save()
    preview = staff_client.get(reverse("admin:judges_judge_preview", args=[judge.pk]) + f"?item={item.pk}")
    html = preview.content.decode()
    assert preview.status_code == 200 and "Order 1 (responses reversed)" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "Answer with one JSON object" in html
    bad = staff_client.get(reverse("admin:judges_judge_preview", args=[judge.pk]) + "?item=abc")
    assert bad.status_code == 200 and "No ready item" in bad.content.decode()

    form = staff_client.post(
        reverse("admin:judges_judgerun_add"), {"judge": judge.pk, "batch": batch.pk, "triage_ceiling": ""}
    )
    assert form.status_code == 302, form.content.decode()[:2000]
    run = JudgeRun.objects.get()
    drive(run)
    page = staff_client.get(reverse("admin:judges_judgerun_stats", args=[run.pk]))
    assert page.status_code == 200 and "Position consistency" in page.content.decode()
    change = staff_client.get(reverse("admin:judges_judgerun_change", args=[run.pk]))
    assert change.status_code == 200
    again = staff_client.post(reverse("admin:judges_judgerun_add"), {"judge": judge.pk, "batch": batch.pk})
    assert again.status_code == 200 and "No ready item of this batch is left" in again.content.decode()


def test_triage_sends_disagreements_to_one_more_human_up_to_the_ceiling(
    judge: Judge, script: JudgeScript, enqueued: list[int], annotator: Any, other_annotator: Any
) -> None:
    batch = varied_batch(3, overlap=1)
    items = list(Item.objects.filter(batch=batch).order_by("pk"))
    # The first human disagrees with the judge (which prefers slot 1) on item 0, agrees on item 1.
    human_judges(items[0], annotator, pick_slot=0)
    human_judges(items[1], annotator, pick_slot=1)
    run = services.judge_run_start(judge_id=judge.pk, batch_id=batch.pk, triage=True, triage_ceiling=2)
    drive(run)
    wanted = dict(Item.objects.filter(batch=batch).values_list("pk", "wanted"))
    assert wanted == {items[0].pk: 2, items[1].pk: 1, items[2].pk: 1}
    assert TriageDecision.objects.filter(run=run).count() == 2
    # Item 0 is open again: another human gets it.
    assert human_judges(items[0], other_annotator, pick_slot=1).item_id == items[0].pk

    # Item 2's human arrives later and disagrees: the sweep picks it up, once; the ceiling holds.
    human_judges(items[2], annotator, pick_slot=0)
    assert services.judge_triage_sweep() == 1
    assert services.judge_triage_sweep() == 0
    assert Item.objects.get(pk=items[2].pk).wanted == 2
    decision = TriageDecision.objects.get(run=run, item=items[0])
    assert decision.disagreed and decision.raised and decision.wanted_after == 2
    second = Judge.objects.create(name="second", sampling_config=judge.sampling_config)
    run2 = services.judge_run_start(judge_id=second.pk, batch_id=batch.pk, triage=True, triage_ceiling=2)
    drive(run2)
    assert Item.objects.get(pk=items[0].pk).wanted == 2  # already at the ceiling
    assert TriageDecision.objects.get(run=run2, item=items[0]).raised is False
