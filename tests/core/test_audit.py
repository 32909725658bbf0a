"""The audit log: every admin action that changes data leaves one event (who, what, when, object,
details) written in the change's own transaction; events are read-only everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.utils import InternalError
from django.test import Client
from rest_framework.test import APIClient

from annotate.accounts.models import Qualification
from annotate.api import services as api_services
from annotate.batches import services as batch_services
from annotate.batches.models import BatchStatus
from annotate.core.audit import audit_record
from annotate.core.choices import AuditAction
from annotate.core.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_enqueue(monkeypatch: pytest.MonkeyPatch) -> None:
    from annotate.endpoints import tasks as generation
    from annotate.exports import tasks as export_tasks

    monkeypatch.setattr(export_tasks.build_export, "delay", lambda job_id: None)
    monkeypatch.setattr(generation.generation_enqueue_batch, "delay", lambda batch_id: None)


@pytest.fixture
def admin_api(batch_admin: Any) -> APIClient:
    client = APIClient()
    client.force_login(batch_admin)
    return client


def events(action: str | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.order_by("id")
    return list(qs.filter(action=action) if action else qs)


def test_batch_admin_actions_through_the_api_are_recorded(
    admin_api: APIClient, batch_admin: Any, annotator: Any
) -> None:
    config = factories.SamplingConfigFactory()
    created = admin_api.post(
        "/api/v1/batches/", {"name": "Week 9", "track": "helpfulness", "sampling_configs": [config.pk]}
    )
    assert created.status_code == 201, created.content
    batch_id = created.json()["id"]
    admin_api.patch(f"/api/v1/batches/{batch_id}/", {"overlap": 3, "guidelines": "Be kind.", "name": "W9"})
    factories.ready_item(_batch(batch_id), 0)
    assert admin_api.post(f"/api/v1/batches/{batch_id}/open/").status_code == 200
    assert admin_api.post(f"/api/v1/batches/{batch_id}/pause/").status_code == 200
    admin_api.post(f"/api/v1/annotators/{annotator.pk}/qualifications/", {"track": "safety"})
    admin_api.delete(f"/api/v1/annotators/{annotator.pk}/qualifications/safety/")
    admin_api.post("/api/v1/exports/", {"schema": "pairwise_flat", "format": "jsonl"})

    seen = [(e.action, e.actor_username, e.object_type) for e in events()]
    assert seen == [
        ("batch.created", "ada_admin", "batches.batch"),
        ("batch.updated", "ada_admin", "batches.batch"),
        ("batch.guidelines_changed", "ada_admin", "batches.batch"),
        ("batch.overlap_changed", "ada_admin", "batches.batch"),
        ("batch.status_changed", "ada_admin", "batches.batch"),
        ("batch.status_changed", "ada_admin", "batches.batch"),
        ("qualification.granted", "ada_admin", "accounts.qualification"),
        ("qualification.revoked", "ada_admin", "accounts.qualification"),
        ("export.requested", "ada_admin", "exports.exportjob"),
    ]
    overlap = events("batch.overlap_changed")[0]
    assert overlap.details == {"from": 1, "to": 3} and overlap.object_id == str(batch_id)
    assert [e.details for e in events("batch.status_changed")] == [
        {"from": "draft", "to": "open"},
        {"from": "open", "to": "paused"},
    ]
    assert events("qualification.granted")[0].details["user"] == annotator.username
    assert all(e.actor_id == batch_admin.pk and e.created_at is not None for e in events())


def _batch(batch_id: int) -> Any:
    from annotate.batches.models import Batch

    return Batch.objects.get(pk=batch_id)


def test_tokens_created_and_revoked_are_recorded_without_the_secret(annotator: Any) -> None:
    created = api_services.token_create(user=annotator, name="vendor", expires_in_days=30)
    api_services.token_revoke(user=annotator, token_id=created.token.pk)
    made, revoked = events()
    assert (made.action, revoked.action) == ("token.created", "token.revoked")
    assert made.actor_username == annotator.username
    assert made.details["prefix"] == created.token.token_key and made.details["name"] == "vendor"
    for event in (made, revoked):
        assert created.secret not in str(event.details) + event.object_repr


def test_nothing_is_recorded_when_nothing_changed_or_the_change_is_refused(batch_admin: Any) -> None:
    batch = factories.ready_batch(items=1)
    batch_services.batch_set_status(batch_id=batch.pk, status=BatchStatus.OPEN, actor=batch_admin)
    batch_services.batch_set_overlap(batch_id=batch.pk, overlap=batch.overlap, actor=batch_admin)
    batch_services.batch_update_guidelines(batch_id=batch.pk, guidelines=batch.guidelines, actor=batch_admin)
    with pytest.raises(Exception):  # noqa: B017 - a DomainError: draft is not reachable from open
        batch_services.batch_set_status(batch_id=batch.pk, status=BatchStatus.DRAFT, actor=batch_admin)
    assert events() == []


def test_the_event_rolls_back_with_its_change(batch_admin: Any) -> None:
    batch = factories.ready_batch(items=1)
    with pytest.raises(RuntimeError), transaction.atomic():
        batch_services.batch_set_status(batch_id=batch.pk, status=BatchStatus.PAUSED, actor=batch_admin)
        assert len(events()) == 1
        raise RuntimeError("the caller's transaction fails after the service")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN and events() == []


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_a_programming_error(batch_admin: Any) -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=batch_admin, action=AuditAction.BATCH_CREATED, object_type="batches.batch")
    with pytest.raises(ValueError, match="unknown audit action"), transaction.atomic():
        audit_record(actor=batch_admin, action="batch.exploded")
    with transaction.atomic():
        audit_record(actor=batch_admin, action=AuditAction.BATCH_CREATED, object_type="batches.batch")
    assert [e.action for e in events()] == ["batch.created"]


def test_admin_changes_are_recorded(client: Client, batch_admin: Any, annotator: Any) -> None:
    client.force_login(batch_admin)
    batch = factories.ready_batch(items=1)
    response = client.post(
        "/admin/batches/batch/",
        {"action": "pause_batches", "_selected_action": [batch.pk]},
    )
    assert response.status_code == 302
    q = Qualification.objects.get(user=annotator, track="helpfulness")
    response = client.post(
        f"/admin/accounts/qualification/{q.pk}/change/",
        {
            "user": annotator.pk,
            "track": "helpfulness",
            "revoked_at_0": "2026-01-01",
            "revoked_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    actions = [(e.action, e.actor_username) for e in events()]
    assert actions == [
        ("batch.status_changed", "ada_admin"),
        ("qualification.revoked", "ada_admin"),
    ]
    assert events()[1].details["via"] == "admin"


def test_the_admin_is_read_only(client: Client, batch_admin: Any) -> None:
    client.force_login(batch_admin)
    batch = factories.ready_batch(items=1)
    batch_services.batch_set_status(batch_id=batch.pk, status=BatchStatus.PAUSED, actor=batch_admin)
    event = events()[0]
    assert client.get("/admin/core/auditevent/").status_code == 200
    page = client.get(f"/admin/core/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get("/admin/core/auditevent/add/").status_code == 403
    assert (
        client.post(f"/admin/core/auditevent/{event.pk}/change/", {"action": "token.created"}).status_code
        == 403
    )
    assert client.post(f"/admin/core/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(
        "/admin/core/auditevent/",
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    event.refresh_from_db()
    assert event.action == "batch.status_changed"


def test_the_database_refuses_to_change_or_delete_an_event(batch_admin: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    batch = factories.ready_batch(items=1)
    batch_services.batch_set_status(batch_id=batch.pk, status=BatchStatus.PAUSED, actor=batch_admin)
    event = events()[0]
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(action="token.created"),
        lambda: AuditEvent.objects.filter(pk=event.pk).update(details={"forged": True}),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises((ProgrammingError, InternalError, IntegrityError)), transaction.atomic():
            attempt()
    # Deleting the actor keeps the event, with the username.
    batch_admin.delete()
    event.refresh_from_db()
    assert event.actor_id is None and event.actor_username == "ada_admin"


def test_admins_list_the_log_through_the_api_and_nobody_else(
    admin_api: APIClient, batch_admin: Any, annotator: Any
) -> None:
    batch = factories.ready_batch(items=1)
    batch_services.batch_set_status(batch_id=batch.pk, status=BatchStatus.PAUSED, actor=batch_admin)
    api_services.token_create(user=annotator, name="t", expires_in_days=None)
    listed = admin_api.get("/api/v1/audit/").json()["results"]
    assert [e["action"] for e in listed] == ["token.created", "batch.status_changed"]
    assert listed[1]["actor_username"] == "ada_admin" and listed[1]["object_id"] == str(batch.pk)
    only = admin_api.get("/api/v1/audit/", {"action": "batch.status_changed"}).json()["results"]
    assert len(only) == 1
    assert admin_api.get("/api/v1/audit/", {"ordering": "actor__password"}).status_code == 400
    assert admin_api.post("/api/v1/audit/", {}).status_code == 405
    annotator_api = APIClient()
    annotator_api.force_login(annotator)
    assert annotator_api.get("/api/v1/audit/").status_code == 403
