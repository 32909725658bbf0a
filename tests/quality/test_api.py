"""/api/v1/stats/...: batch admins read the stored figures and queue recomputations; anyone else gets a 404
(or a 401 without credentials); the operations are in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from annotate.api import services as api_services
from annotate.quality.models import QualityReport
from tests import factories
from tests.quality.conftest import Builder

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _generous_throttles(settings: Any) -> None:
    rates = {"token": "100000/min", "session": "100000/min", "anon": "100000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def _client(user: Any) -> APIClient:
    client = APIClient()
    secret = api_services.token_create(user=user, name="script", expires_in_days=None).secret
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def _data(build: Builder) -> Any:
    batch = build.batch(flag_min_evidence=1, flag_min_agreement=0.9)
    alice, bob, carol = build.user("alice"), build.user("bob"), build.user("carol")
    for _ in range(3):
        item = build.item(batch)
        build.pairwise(item, alice, 0)
        build.pairwise(item, bob, 0)
        build.pairwise(item, carol, 1)
    return batch


def test_a_batch_admin_reads_a_batchs_figures(build: Builder, batch_admin: Any) -> None:
    batch = _data(build)
    body = _client(batch_admin).get(f"/api/v1/stats/batches/{batch.pk}/").json()
    assert body["scope"] == "batch" and body["batch"] == batch.pk and body["judgments"] == 9
    assert body["agreement"]["agreement_rate"] == {"value": pytest.approx(1 / 3), "items": 3}
    assert body["agreement"]["fleiss_kappa"]["raters"] == 3
    flagged = [a["annotator"] for a in body["annotator_stats"] if a["flagged"]]
    assert flagged == ["carol"]
    assert body["leaderboard"]["names"] == ["model-a", "model-b"]
    assert body["progress"]["judgments_wanted"] == 9
    assert QualityReport.objects.filter(batch=batch).count() == 1  # computed on first read, then stored


def test_track_figures_and_unknown_tracks(build: Builder, batch_admin: Any) -> None:
    _data(build)
    client = _client(batch_admin)
    body = client.get("/api/v1/stats/tracks/helpfulness/").json()
    assert body["scope"] == "track" and body["batch"] is None and body["judgments"] == 9
    assert "annotator_stats" not in body
    assert client.get("/api/v1/stats/tracks/nonsense/").status_code == 404


def test_others_get_404_and_anonymous_callers_401(build: Builder, annotator: Any, exporter: Any) -> None:
    batch = _data(build)
    for user in (annotator, exporter):
        client = _client(user)
        assert client.get(f"/api/v1/stats/batches/{batch.pk}/").status_code == 404
        assert client.get("/api/v1/stats/tracks/helpfulness/").status_code == 404
        assert client.post(f"/api/v1/stats/batches/{batch.pk}/recompute/").status_code == 404
    assert APIClient().get(f"/api/v1/stats/batches/{batch.pk}/").status_code == 401
    assert _client(annotator).get("/api/v1/stats/batches/999999/").status_code == 404


def test_recompute_queues_the_batch_and_its_track(
    build: Builder, batch_admin: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from annotate.quality import tasks

    batch = _data(build)
    sent: list[Any] = []
    monkeypatch.setattr(tasks.recompute_batch_quality, "delay", lambda pk: sent.append(pk))
    monkeypatch.setattr(tasks.recompute_track_quality, "delay", lambda track: sent.append(track))
    client = _client(batch_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/stats/batches/{batch.pk}/recompute/")
    assert (response.status_code, response.json()) == (202, {"queued": True})
    assert sent == [batch.pk, "helpfulness"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/stats/tracks/safety/recompute/").status_code == 202
    assert sent[-1] == "safety"
    refused = client.post(f"/api/v1/stats/batches/{batch.pk}/recompute/", {"x": 1}, format="json")
    assert refused.status_code == 400


def test_stats_operations_are_in_the_openapi_schema(client: Any) -> None:
    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = schema["paths"]
    assert "/api/v1/stats/batches/{batch_id}/" in paths
    assert "/api/v1/stats/tracks/{track}/recompute/" in paths
    batch_stats = schema["components"]["schemas"]["BatchStatsOutput"]["properties"]
    assert {"agreement", "annotator_stats", "leaderboard", "progress"} <= set(batch_stats)


def test_an_export_request_with_a_bad_flag_filter_is_a_400_naming_the_field(exporter: Any) -> None:
    response = _client(exporter).post(
        "/api/v1/exports/",
        {"schema": "trl_preference", "format": "jsonl", "spec": {"exclude_flagged_annotators": 1}},
        format="json",
    )
    assert response.status_code == 400
    assert "exclude_flagged_annotators" in response.json()["error"]["fields"]


def test_factories_are_untouched_by_quality_defaults() -> None:
    batch = factories.BatchFactory()
    assert not batch.adaptive_overlap and batch.flag_min_evidence == 10
