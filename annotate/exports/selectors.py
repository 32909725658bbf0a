"""Reads of export jobs, scoped to the caller: what the API's GET and download views call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from annotate.core.errors import ConflictError, DomainError
from annotate.exports.models import ExportFormat, ExportJob, ExportStatus
from annotate.exports.services import export_storage_dir

CONTENT_TYPES = {
    ExportFormat.JSONL: "application/x-ndjson",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


class ExportNotFound(DomainError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("No such export.", code="not_found")


def export_jobs_visible_to(user: Any) -> QuerySet[ExportJob]:
    """Batch admins see every export; anyone else only the exports they requested."""
    jobs = ExportJob.objects.select_related("requested_by")
    if getattr(user, "is_batch_admin", False):
        return jobs
    if not getattr(user, "is_authenticated", False):
        return jobs.none()
    return jobs.filter(requested_by=user)


def export_job_get(*, user: Any, job_id: int) -> ExportJob:
    job = export_jobs_visible_to(user).filter(pk=job_id).first()
    if job is None:
        raise ExportNotFound()
    return job


def export_job_to_dict(job: ExportJob) -> dict[str, Any]:
    """The job as the API shows it (status, counts, checksum; the manifest once done)."""
    return {
        "id": job.pk,
        "status": job.status,
        "schema": job.schema,
        "format": job.format,
        "spec": job.spec,
        "row_count": job.row_count,
        "sha256": job.sha256 or None,
        "error": job.error or None,
        "manifest": job.manifest,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


@dataclass(frozen=True)
class ExportDownload:
    file: Any  # an open binary file from the default storage; the caller streams and closes it
    filename: str
    content_type: str
    size: int | None
    sha256: str


def export_download(*, user: Any, job_id: int, part: str = "data") -> ExportDownload:
    """The export's data file (or its manifest / README). ConflictError (409) until the job is done."""
    job = export_job_get(user=user, job_id=job_id)
    return export_open_file(job, part=part)


def _inside_job_folder(job: ExportJob, name: str) -> bool:
    """A stored name is only ever opened inside its own job's folder under the storage root: no `..`, no
    absolute path, no symlink out of it, whatever the database row says."""
    folder = export_storage_dir(job.pk)
    if "\x00" in name or "\\" in name or not name.startswith(folder + "/"):
        return False
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return False
    root = Path(settings.MEDIA_ROOT).resolve() / folder
    try:
        real = (Path(settings.MEDIA_ROOT) / name).resolve()
    except (OSError, RuntimeError):
        return False
    return real.is_relative_to(root.resolve()) and real != root.resolve()


def export_open_file(job: ExportJob, *, part: str = "data") -> ExportDownload:
    if job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING):
        raise ConflictError(
            "The export is still being built; try again when its status is done.", code="not_ready"
        )
    if job.status == ExportStatus.FAILED:
        raise ConflictError(f"The export failed: {job.error}", code="export_failed")
    if part == "data":
        name, content_type = job.file.name, CONTENT_TYPES[job.format]
    elif part == "manifest":
        name, content_type = f"{export_storage_dir(job.pk)}/manifest.json", "application/json"
    elif part == "readme":
        name, content_type = f"{export_storage_dir(job.pk)}/README.md", "text/markdown; charset=utf-8"
    else:
        raise DomainError("part must be data, manifest or readme.", field="part")
    if not name or not _inside_job_folder(job, name) or not default_storage.exists(name):
        raise ExportNotFound()
    try:
        size: int | None = default_storage.size(name)
    except (NotImplementedError, OSError):
        size = None
    filename = f"export-{job.pk}-{name.rsplit('/', 1)[-1]}"
    return ExportDownload(default_storage.open(name, "rb"), filename, content_type, size, job.sha256)
