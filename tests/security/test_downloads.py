"""Export downloads never read outside the job's own folder under the storage root, whatever the stored
name says, and are always sent as attachments that browsers may not sniff into HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotate.exports.models import ExportJob
from tests import factories

pytestmark = pytest.mark.django_db

SECRET = b"root:x:0:0:the secret outside the storage root\n"


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "exports").mkdir(parents=True)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "exports" / "not-a-job-file.jsonl").write_bytes(SECRET)
    settings.MEDIA_ROOT = str(root)
    return root


def done_job(user: Any, name: str) -> ExportJob:
    return ExportJob.objects.create(
        requested_by=user,
        schema="pairwise_flat",
        format="jsonl",
        status="done",
        row_count=1,
        sha256="0" * 64,
        file=name,
    )


@pytest.fixture
def exporter_api(exporter: Any) -> APIClient:
    client = APIClient()
    client.force_login(exporter)
    return client


def test_a_real_export_downloads_as_an_unsniffable_attachment(
    media: Path, exporter: Any, exporter_api: APIClient
) -> None:
    job = done_job(exporter, "placeholder")
    folder = media / "exports" / str(job.pk)
    folder.mkdir()
    (folder / "pairwise_flat.jsonl").write_bytes(b'{"a": "<script>alert(1)</script>"}\n')
    ExportJob.objects.filter(pk=job.pk).update(file=f"exports/{job.pk}/pairwise_flat.jsonl")
    response = exporter_api.get(f"/api/v1/exports/{job.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="export-{job.pk}-pairwise_flat.jsonl"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/x-ndjson"
    assert b"".join(response.streaming_content) == b'{"a": "<script>alert(1)</script>"}\n'


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "exports/../../secret.txt",
        "exports/{pk}/../../../secret.txt",
        "exports/{pk}/../not-a-job-file.jsonl",
        "exports/not-a-job-file.jsonl",
        "exports/{other}/data.jsonl",
        "/etc/passwd",
        "{tmp}/secret.txt",
        "exports/{pk}/./data.jsonl",
        "exports/{pk}//data.jsonl",
        "exports\\{pk}\\..\\..\\..\\secret.txt",
        "exports/{pk}/link.jsonl",
    ],
)
def test_a_stored_name_outside_the_job_folder_is_never_read(
    media: Path, exporter: Any, exporter_api: APIClient, name: str
) -> None:
    other = done_job(exporter, "x")
    (media / "exports" / str(other.pk)).mkdir()
    (media / "exports" / str(other.pk) / "data.jsonl").write_bytes(SECRET)
    job = done_job(exporter, "x")
    folder = media / "exports" / str(job.pk)
    folder.mkdir()
    (folder / "data.jsonl").write_bytes(SECRET)
    (folder / "link.jsonl").symlink_to(media.parent / "secret.txt")
    stored = name.format(pk=job.pk, other=other.pk, tmp=media.parent)
    ExportJob.objects.filter(pk=job.pk).update(file=stored)
    for part in ("data", "manifest", "readme"):
        response = exporter_api.get(f"/api/v1/exports/{job.pk}/download/?part={part}")
        assert response.status_code in (400, 404), (stored, part, response.status_code)
        assert SECRET not in response.content
    admin = Client()
    admin.force_login(factories.UserFactory(username="root_admin", is_staff=True, is_superuser=True))
    response = admin.get(f"/admin/exports/exportjob/{job.pk}/download/data/")
    assert response.status_code in (302, 404)
    assert SECRET not in (
        response.content if not response.streaming else b"".join(response.streaming_content)
    )


@pytest.mark.parametrize("part", ["../../secret.txt", "data/../../x", "%2e%2e/secret", "manifest.json"])
def test_a_part_name_is_one_of_the_three_or_refused(
    media: Path, exporter: Any, exporter_api: APIClient, part: str
) -> None:
    job = done_job(exporter, "x")
    response = exporter_api.get(f"/api/v1/exports/{job.pk}/download/", {"part": part})
    assert response.status_code == 400
    assert "part" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "spec",
    [
        {"batches": ["../../etc/passwd"]},
        {"name": "../../../etc/passwd"},
        {"path": "/etc/passwd"},
        {"batches": [1], "output": "../x"},
    ],
)
def test_an_export_request_cannot_name_a_path(
    exporter_api: APIClient, media: Path, spec: dict[str, Any]
) -> None:
    response = exporter_api.post(
        "/api/v1/exports/", {"schema": "pairwise_flat", "format": "jsonl", "spec": spec}, format="json"
    )
    assert response.status_code == 400, response.content
    assert not ExportJob.objects.exists()
