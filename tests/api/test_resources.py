"""The resources: batches (create, import, start, pause, close, progress), endpoints, configs, items,
judgments (filters, cursor pagination), annotators' qualifications, exports (create, download)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.accounts.models import Qualification
from annotate.assignments import services as assignments
from annotate.batches.models import Item
from annotate.exports.models import ExportJob
from annotate.judgments.models import Judgment
from annotate.judgments.services import judgment_submit
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(batch_admin: Any, api_as: Any) -> APIClient:
    return api_as(batch_admin)


def test_a_batch_from_creation_to_annotation(admin: APIClient, annotator: Any, api_as: Any) -> None:
    created = admin.post(
        "/api/v1/batches/",
        {"name": "Week 1", "track": "helpfulness", "guidelines": "# Be kind", "overlap": 1},
        format="json",
    )
    assert created.status_code == 201, created.content
    batch = created.json()
    assert batch["status"] == "draft" and batch["guidelines_version"] == 1
    jsonl = (
        b'{"prompt": "Why is the sky blue?", "responses": [{"model": "a", "content": "Rayleigh."}, '
        b'{"model": "b", "content": "Because."}]}\n'
        b'{"prompt": "Name a prime.", "responses": [{"model": "a", "content": "7"}, '
        b'{"model": "b", "content": "9"}]}\n'
    )
    imported = admin.generic(
        "POST", f"/api/v1/batches/{batch['id']}/import/", data=jsonl, content_type="application/x-ndjson"
    )
    assert imported.status_code == 200, imported.content
    assert imported.json()["created"] == 2 and imported.json()["refused"] is False
    started = admin.post(f"/api/v1/batches/{batch['id']}/start/")
    assert started.status_code == 200 and started.json()["opened"] is True
    assert started.json()["batch"]["status"] == "open"
    progress = admin.get(f"/api/v1/batches/{batch['id']}/progress/").json()
    assert progress["items_ready"] == 2 and progress["judgments_wanted"] == 2
    # The annotator sees it now, and can work on it.
    alice = api_as(annotator)
    assert batch["id"] in {b["id"] for b in alice.get("/api/v1/batches/").json()["results"]}
    version = alice.get(f"/api/v1/batches/{batch['id']}/guidelines/").json()["version"]
    alice.post(f"/api/v1/batches/{batch['id']}/guidelines/", {"version": version}, format="json")
    assert alice.post(f"/api/v1/batches/{batch['id']}/claim/").status_code == 200
    assert admin.post(f"/api/v1/batches/{batch['id']}/pause/").json()["status"] == "paused"
    assert admin.post(f"/api/v1/batches/{batch['id']}/open/").json()["status"] == "open"
    assert admin.post(f"/api/v1/batches/{batch['id']}/close/").json()["status"] == "closed"
    assert admin.get(f"/api/v1/batches/{batch['id']}/progress/").json()["active_leases"] == 1


def test_an_import_with_a_bad_line_is_refused_whole(admin: APIClient) -> None:
    batch = factories.BatchFactory(status="draft")
    jsonl = b'{"prompt": "fine"}\n{"prompt": 42}\nnot json\n'
    response = admin.generic(
        "POST", f"/api/v1/batches/{batch.pk}/import/", data=jsonl, content_type="text/plain"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "import_refused"
    assert any(name.startswith("lines.2.") for name in error["fields"])
    assert any(name.startswith("lines.3.") for name in error["fields"])
    assert not Item.objects.filter(batch=batch).exists()


def test_an_import_replayed_with_its_idempotency_key_imports_once(admin: APIClient) -> None:
    batch = factories.BatchFactory(status="draft")
    jsonl = b'{"prompt": "one"}\n{"prompt": "two"}\n'
    url = f"/api/v1/batches/{batch.pk}/import/"
    kwargs = {"data": jsonl, "content_type": "application/x-ndjson", "HTTP_IDEMPOTENCY_KEY": "import-1"}
    first = admin.generic("POST", url, **kwargs)
    again = admin.generic("POST", url, **kwargs)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert Item.objects.filter(batch=batch).count() == 2
    other = admin.generic("POST", url, **{**kwargs, "data": b'{"prompt": "three"}\n'})
    assert other.status_code == 422


def test_an_import_must_be_jsonl(admin: APIClient) -> None:
    batch = factories.BatchFactory(status="draft")
    response = admin.post(f"/api/v1/batches/{batch.pk}/import/", {"prompt": "x"}, format="json")
    assert response.status_code == 415


def test_a_batch_that_breaks_the_mode_rules_is_refused(admin: APIClient) -> None:
    response = admin.post(
        "/api/v1/batches/",
        {"name": "bad", "track": "helpfulness", "mode": "pairwise", "responses_per_item": 4},
        format="json",
    )
    assert response.status_code == 400 and "responses_per_item" in response.json()["error"]["fields"]


def test_patching_guidelines_makes_a_new_version(admin: APIClient) -> None:
    batch = factories.ready_batch(items=1)
    response = admin.patch(
        f"/api/v1/batches/{batch.pk}/", {"guidelines": "New rules", "overlap": 3}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["guidelines_version"] == 2 and response.json()["overlap"] == 3
    assert Item.objects.get(batch=batch).wanted == 3


def test_endpoints_and_configs(admin: APIClient, settings: Any) -> None:
    refused = admin.post(
        "/api/v1/endpoints/",
        {"name": "meta", "base_url": "http://169.254.169.254/v1", "model": "m"},
        format="json",
    )
    assert refused.status_code == 400 and "base_url" in refused.json()["error"]["fields"]
    settings.ALLOWED_ENDPOINT_HOSTS = ["127.0.0.1"]
    endpoint = admin.post(
        "/api/v1/endpoints/",
        {"name": "local", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "LOCAL_KEY"},
        format="json",
    )
    assert endpoint.status_code == 201, endpoint.content
    duplicate = admin.post(
        "/api/v1/endpoints/",
        {"name": "local", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
        format="json",
    )
    assert duplicate.status_code == 400 and "name" in duplicate.json()["error"]["fields"]
    bad_env = admin.patch(
        f"/api/v1/endpoints/{endpoint.json()['id']}/", {"api_key_env": "sk-123"}, format="json"
    )
    assert bad_env.status_code == 400 and "api_key_env" in bad_env.json()["error"]["fields"]
    test = admin.post(f"/api/v1/endpoints/{endpoint.json()['id']}/test/")
    assert test.status_code == 200 and test.json()["ok"] is False  # nothing listens on port 9
    config = admin.post(
        "/api/v1/sampling-configs/",
        {
            "endpoint": endpoint.json()["id"],
            "label": "local-t1",
            "temperature": 1.0,
            "extra_params": {"model": "x"},
        },
        format="json",
    )
    assert config.status_code == 400 and "extra_params" in config.json()["error"]["fields"]
    config = admin.post(
        "/api/v1/sampling-configs/", {"endpoint": endpoint.json()["id"], "label": "local-t1"}, format="json"
    )
    assert config.status_code == 201 and config.json()["endpoint_name"] == "local"
    missing = admin.post("/api/v1/sampling-configs/", {"endpoint": 10**12, "label": "x"}, format="json")
    assert missing.status_code == 400 and "endpoint" in missing.json()["error"]["fields"]


def test_items_show_their_responses_and_model_names_to_admins(admin: APIClient) -> None:
    batch = factories.ready_batch(items=3)
    page = admin.get(f"/api/v1/items/?batch={batch.pk}&page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    assert page["results"][0]["responses"][0]["model_name"] == "model-0"
    rest = admin.get(page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None


def _judgments(n: int) -> list[Judgment]:
    batch = factories.ready_batch(items=n, overlap=1)
    out = []
    for i in range(n):
        user = factories.quick_annotator(f"judge{i}")
        assignment = assignments.assignment_claim_next(annotator=user, batch_id=batch.pk)
        assert assignment is not None
        data = factories.pairwise_answer(assignment, f"key-{i}-xyz")
        out.append(judgment_submit(annotator=user, assignment_id=assignment.pk, data=data).judgment)
    return out


def test_judgments_filter_by_batch_track_annotator_and_time(admin: APIClient) -> None:
    judgments = _judgments(3)
    other = factories.ready_batch(items=1)
    old = judgments[0]
    Judgment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    assert {j["id"] for j in admin.get(f"/api/v1/judgments/?batch={other.pk}").json()["results"]} == set()
    by_batch = admin.get(f"/api/v1/judgments/?batch={judgments[0].batch_id}&track=helpfulness").json()
    assert [j["id"] for j in by_batch["results"]] == [j.pk for j in judgments]
    assert admin.get("/api/v1/judgments/?track=safety").json()["results"] == []
    pseudonym = judgments[1].annotator.pseudonym
    assert [j["id"] for j in admin.get(f"/api/v1/judgments/?annotator={pseudonym}").json()["results"]] == [
        judgments[1].pk
    ]
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    recent = admin.get("/api/v1/judgments/", {"created_after": since}).json()["results"]
    assert [j["id"] for j in recent] == [j.pk for j in judgments[1:]]
    before = admin.get("/api/v1/judgments/", {"created_before": since}).json()["results"]
    assert [j["id"] for j in before] == [old.pk]


def test_judgments_page_with_a_cursor_in_either_order(admin: APIClient) -> None:
    judgments = _judgments(5)
    seen: list[int] = []
    url: str | None = "/api/v1/judgments/?page_size=2"
    while url:
        page = admin.get(url).json()
        seen += [j["id"] for j in page["results"]]
        url = page["next"]
    assert seen == [j.pk for j in judgments]
    newest = admin.get("/api/v1/judgments/?page_size=2&ordering=-id").json()
    assert [j["id"] for j in newest["results"]] == [judgments[4].pk, judgments[3].pk]
    cursor = parse_qs(urlparse(newest["next"]).query)["cursor"][0]
    following = admin.get("/api/v1/judgments/", {"page_size": 2, "ordering": "-id", "cursor": cursor}).json()
    assert [j["id"] for j in following["results"]] == [judgments[2].pk, judgments[1].pk]


def test_qualifications_are_granted_and_revoked(admin: APIClient, annotator: Any) -> None:
    granted = admin.post(
        f"/api/v1/annotators/{annotator.pk}/qualifications/", {"track": "safety"}, format="json"
    )
    assert granted.status_code == 200
    tracks = {q["track"]: q for q in granted.json()["qualifications"]}
    assert tracks["safety"]["usable"] is False  # until the annotator consents
    revoked = admin.delete(f"/api/v1/annotators/{annotator.pk}/qualifications/helpfulness/")
    assert revoked.status_code == 200
    assert Qualification.objects.get(user=annotator, track="helpfulness").revoked_at is not None
    assert admin.delete(f"/api/v1/annotators/{annotator.pk}/qualifications/chess/").status_code == 404
    only_safety = admin.get("/api/v1/annotators/?track=helpfulness").json()["results"]
    assert annotator.pk not in {u["id"] for u in only_safety}


def test_the_annotator_consents_to_safety_content(annotator: Any, admin: APIClient, api_as: Any) -> None:
    admin.post(f"/api/v1/annotators/{annotator.pk}/qualifications/", {"track": "safety"}, format="json")
    alice = api_as(annotator)
    assert alice.get("/api/v1/me/").json()["tracks"] == ["helpfulness"]
    assert alice.post("/api/v1/me/safety-consent/", {"agree": False}, format="json").status_code == 400
    consented = alice.post("/api/v1/me/safety-consent/", {"agree": True}, format="json")
    assert consented.status_code == 200 and consented.json()["tracks"] == ["helpfulness", "safety"]


def test_exports_are_requested_and_downloaded(
    exporter: Any, api_as: Any, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    erin = api_as(exporter)
    created = erin.post("/api/v1/exports/", {"schema": "trl_preference", "format": "jsonl"}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "queued"
    job_id = created.json()["id"]
    assert erin.get(f"/api/v1/exports/{job_id}/download/").json()["error"]["code"] == "not_ready"
    name = default_storage.save(f"exports/{job_id}/trl_preference.jsonl", ContentFile(b'{"prompt": []}\n'))
    ExportJob.objects.filter(pk=job_id).update(status="done", file=name, row_count=1, sha256="ab" * 32)
    download = erin.get(f"/api/v1/exports/{job_id}/download/")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/x-ndjson"
    assert b"".join(download.streaming_content) == b'{"prompt": []}\n'
    assert "attachment" in download["Content-Disposition"]
    bad_spec = erin.post(
        "/api/v1/exports/",
        {"schema": "trl_preference", "format": "jsonl", "spec": {"min_agreemnt": 1}},
        format="json",
    )
    assert bad_spec.status_code == 400 and "min_agreemnt" in bad_spec.json()["error"]["fields"]
    assert erin.get(f"/api/v1/exports/{job_id}/download/?part=secrets").status_code == 400
