"""Every admin page a batch admin uses answers, and untrusted text and secrets are handled safely."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from annotate.assignments.models import Assignment
from annotate.batches.models import Batch, Dialogue, Item
from annotate.core.models import AuditEvent
from annotate.exports.models import ExportJob
from annotate.judges.models import Judge, JudgeVersion, Verdict
from annotate.judges.services import judge_run_start
from annotate.judgments.models import Judgment
from annotate.quality.models import AnnotatorStats, QualityReport
from annotate.quality.services import quality_recompute_batch
from tests import factories

pytestmark = pytest.mark.django_db

# Rows only services write: admins can look at them but never add or edit them by hand.
READ_ONLY = {
    Assignment,
    Judgment,
    ExportJob,
    Dialogue,
    JudgeVersion,
    Verdict,
    QualityReport,
    AnnotatorStats,
    AuditEvent,
}
REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


def admin_url(model: type, view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def populated(batch_admin, annotator) -> None:  # type: ignore[no-untyped-def]
    from tests.test_invariants import make_assignment, pairwise_judgment

    batch = factories.ready_batch(items=3, overlap=2)
    config = factories.SamplingConfigFactory()
    assignment = make_assignment(batch.items.first(), annotator)
    pairwise_judgment(assignment)
    # A judge with a published version and a run over the batch (its verdicts are still pending), and the
    # batch's quality report with its per-annotator rows.
    judge = Judge.objects.create(name="admin judge", sampling_config=config)
    judge_run_start(judge_id=judge.pk, batch_id=batch.pk, user=batch_admin)
    quality_recompute_batch(batch_id=batch.pk)
    ExportJob.objects.create(requested_by=batch_admin, schema="trl_preference", format="jsonl")
    Group.objects.create(name="Vendor A")
    Dialogue.objects.create(batch=batch, author=annotator, idempotency_key="admin-page-1")
    from annotate.batches.services import batch_set_status

    batch_set_status(batch_id=batch.pk, status="paused", actor=batch_admin)  # an audit event


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_every_changelist_answers(staff_client: Client, populated: None, model: type) -> None:
    response = staff_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_every_add_page_answers_or_is_deliberately_read_only(staff_client: Client, model: type) -> None:
    response = staff_client.get(admin_url(model, "add"))
    assert response.status_code == (403 if model in READ_ONLY else 200)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_every_change_page_answers(staff_client: Client, populated: None, model: type) -> None:
    obj = model.objects.first()
    assert obj is not None, f"fixture made no {model.__name__}"
    response = staff_client.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200


def test_annotators_cannot_open_the_admin(annotator_client: Client) -> None:
    response = annotator_client.get(reverse("admin:batches_batch_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_batch_list_shows_progress(staff_client: Client, populated: None) -> None:
    body = staff_client.get(admin_url(Item.batch.field.related_model, "changelist")).content.decode()
    assert "3 / 3" in body  # items ready / items
    assert "0 / 6" in body  # judgments done / wanted: no submitted assignment yet, 3 items x overlap 2


def test_responses_are_rendered_sanitized_in_the_admin(staff_client: Client) -> None:
    batch = factories.BatchFactory()
    item = factories.ready_item(batch, 1)
    item.responses.filter(slot=0).update(
        content="**bold** <script>alert(1)</script> [x](javascript:alert(2))"
    )
    body = staff_client.get(admin_url(Item, "change", item.pk)).content.decode()
    assert "<strong>bold</strong>" in body
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'href="javascript:' not in body


def test_the_endpoint_api_key_is_never_shown(staff_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-very-secret-value-123"
    monkeypatch.setenv("STUB_API_KEY", secret)
    endpoint = factories.ModelEndpointFactory(api_key_env="STUB_API_KEY")
    for url in (admin_url(type(endpoint), "changelist"), admin_url(type(endpoint), "change", endpoint.pk)):
        body = staff_client.get(url).content.decode()
        assert secret not in body
        assert "STUB_API_KEY: set" in body


def quality_fields(batch: Batch) -> dict[str, object]:
    """The quality fieldset as the browser submits it: the batch's values (an unchecked box is left out)."""
    names = [
        "overlap_ceiling",
        "adaptive_rule",
        "flag_min_agreement",
        "flag_min_gold_accuracy",
        "flag_min_evidence",
    ]
    data: dict[str, object] = {name: getattr(batch, name) for name in names}
    if batch.adaptive_overlap:
        data["adaptive_overlap"] = "on"
    return data


def test_changing_guidelines_in_the_admin_bumps_their_version(staff_client: Client) -> None:
    batch = factories.BatchFactory(guidelines="old")
    url = admin_url(type(batch), "change", batch.pk)
    data = {
        "name": batch.name,
        "description": "",
        "status": batch.status,
        "track": batch.track,
        "mode": batch.mode,
        "responses_per_item": 2,
        "overlap": 2,
        "lease_minutes": 30,
        "gold_rate": 0,
        "prompt_source": batch.prompt_source,
        "guidelines": "new guidelines",
        **quality_fields(batch),
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    batch.refresh_from_db()
    assert (batch.guidelines, batch.guidelines_version, batch.overlap) == ("new guidelines", 2, 2)


def test_an_invalid_k_is_shown_as_a_form_error(staff_client: Client) -> None:
    data = {
        "name": "bad",
        "status": "draft",
        "track": "helpfulness",
        "mode": "pairwise",
        "responses_per_item": 4,
        "overlap": 1,
        "lease_minutes": 30,
        "gold_rate": 0,
        "prompt_source": "imported",
        **quality_fields(Batch()),
    }
    response = staff_client.post(reverse("admin:batches_batch_add"), data)
    assert response.status_code == 200
    assert "A pairwise batch has exactly 2 responses per item." in response.content.decode()
