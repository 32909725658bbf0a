"""The Idempotency-Key records: only successes are kept, old keys are forgotten, the purge job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from annotate.api.models import ApiToken, IdempotencyRecord
from annotate.api.tasks import purge_api_records
from annotate.batches.models import Batch
from tests.api.conftest import expire, make_token

pytestmark = pytest.mark.django_db


def test_a_failed_write_keeps_no_record_and_the_key_can_be_retried(batch_admin: Any, api_as: Any) -> None:
    client = api_as(batch_admin)
    bad = client.post(
        "/api/v1/batches/", {"name": "x", "track": "chess"}, format="json", HTTP_IDEMPOTENCY_KEY="b-1"
    )
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = client.post(
        "/api/v1/batches/", {"name": "x", "track": "safety"}, format="json", HTTP_IDEMPOTENCY_KEY="b-1"
    )
    assert good.status_code == 201
    record = IdempotencyRecord.objects.get()
    assert (record.method, record.path, record.status_code) == ("POST", "/api/v1/batches/", 201)
    assert record.response_body == good.content.decode()


def test_keys_are_per_user(batch_admin: Any, api_as: Any) -> None:
    other = api_as(type(batch_admin).objects.create(username="ada2", is_staff=True))
    body = {"name": "x", "track": "safety"}
    assert (
        api_as(batch_admin)
        .post("/api/v1/batches/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
        .status_code
        == 201
    )
    assert other.post("/api/v1/batches/", body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    assert Batch.objects.count() == 2


def test_an_old_key_is_forgotten(batch_admin: Any, api_as: Any, settings: Any) -> None:
    client = api_as(batch_admin)
    body = {"name": "x", "track": "safety"}
    assert client.post("/api/v1/batches/", body, format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS + 1)
    )
    again = client.post("/api/v1/batches/", body, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Batch.objects.count() == 2


def test_the_purge_job_forgets_old_records_and_expired_tokens(
    batch_admin: Any, api_as: Any, settings: Any
) -> None:
    client = api_as(batch_admin)
    for key in ("a", "b"):
        client.post(
            "/api/v1/batches/", {"name": key, "track": "safety"}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
    IdempotencyRecord.objects.filter(key="a").update(
        created_at=timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS + 1)
    )
    expired = make_token(batch_admin, days=1)
    expire(expired)
    live = ApiToken.objects.count() - 1
    assert purge_api_records() == {"idempotency_records": 1, "tokens": 1}
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["b"]
    assert ApiToken.objects.count() == live
