"""Export jobs: requesting one (the API's POST, the admin's buttons) and building its files (the worker).

`export_request` validates and stores the job, then enqueues the build once the transaction commits.
`export_build` is what the Celery task runs: it claims the job with a compare-and-set, streams the rows from
one database snapshot into a temporary file, saves the data file, manifest.json and README.md into the
default storage under exports/<job id>/, and records the outcome on the job. Running it twice is harmless:
a job that is done (or failed, or being built by another worker) is left alone.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.accounts.models import User
from annotate.core.audit import audit_record
from annotate.core.choices import AuditAction
from annotate.exports import queries
from annotate.exports.datasets import COLUMNS
from annotate.exports.models import ExportJob, ExportSchema, ExportStatus
from annotate.exports.rows import MARGIN_PRESETS, ComparisonBuilder, RawBuilder, flat_row
from annotate.exports.spec import ExportSpec, parse_export_spec, parse_format, parse_schema
from annotate.exports.writers import (
    FILE_EXTENSIONS,
    HashingFile,
    build_manifest,
    open_writer,
    render_dataset_card,
)

logger = logging.getLogger(__name__)

# Rows per FETCH from the server-side cursor. A chunk of 1,000 judgment rows (~2 kB of text each) is ~8 MB
# of Python objects and at most three are alive (one worked on, one queued, one arriving). With the
# interpreter, Django and pyarrow (~120 MB) and a Parquet row group being gathered, the export's peak RSS
# measured 146 MB (JSONL) and 223 MB (Parquet) on the benchmark, whatever the row count; chunks of 2,000
# took Parquet to 235-258 MB, and no faster (a FETCH round trip per 1,000 rows is not what the time goes to).
CHUNK_ROWS = int(getattr(settings, "EXPORT_CHUNK_ROWS", 1000))
# Parquet row groups gather this many rows (as Arrow buffers, far more compact than the Python rows): about
# 11 MB of text before compression, 0.8 MB after.
ROW_GROUP_ROWS = int(getattr(settings, "EXPORT_PARQUET_ROW_GROUP_ROWS", 5000))
# A job left "running" this long after it started belongs to a worker that died: it may be claimed again.
STALE_AFTER = timedelta(seconds=int(getattr(settings, "EXPORT_TIME_LIMIT", 1900)) + 60)
MAX_ERROR_CHARS = 2000


def export_request(*, user: User | None, spec: Any, schema: Any, format: Any) -> ExportJob:
    """Validate a request and queue its build; raises DomainError(field=...) for bad input (HTTP 400)."""
    schema = parse_schema(schema)
    fmt = parse_format(format)
    parsed = parse_export_spec(spec, schema=schema)
    with transaction.atomic():
        job = ExportJob.objects.create(requested_by=user, spec=parsed.to_dict(), schema=schema, format=fmt)
        job_id = job.pk
        audit_record(
            actor=user,
            action=AuditAction.EXPORT_REQUESTED,
            obj=job,
            details={"schema": schema, "format": fmt, "spec": job.spec},
        )

        def enqueue() -> None:
            from annotate.exports.tasks import build_export

            build_export.delay(job_id)

        transaction.on_commit(enqueue)
    return job


def _claim(job_id: int) -> bool:
    """Compare-and-set: queued (or running with a dead worker) -> running. Only one caller wins."""
    now = timezone.now()
    claimable = Q(status=ExportStatus.QUEUED) | Q(
        status=ExportStatus.RUNNING, started_at__lt=now - STALE_AFTER
    )
    return bool(
        ExportJob.objects.filter(claimable, pk=job_id).update(
            status=ExportStatus.RUNNING, started_at=now, finished_at=None, error=""
        )
    )


def export_build(job_id: int) -> ExportJob | None:
    """Build the files of job `job_id` if it is still to be built; returns the job as it ends up.

    Any error is recorded on the job (status failed, error message) and the job is returned; a database
    that went away is re-raised after giving the claim back, so the task can retry it.
    """
    if not _claim(job_id):
        return ExportJob.objects.filter(pk=job_id).first()
    job = ExportJob.objects.get(pk=job_id)
    try:
        result = _build(job)
    except TRANSIENT_ERRORS as exc:
        logger.warning("export %s: transient database error, giving the job back: %s", job_id, exc)
        connection.close_if_unusable_or_obsolete()  # a broken connection is replaced on the next query
        _release(job_id)
        raise
    except Exception as exc:
        logger.exception("export %s failed", job_id)
        export_mark_failed(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        return ExportJob.objects.filter(pk=job_id).first()
    ExportJob.objects.filter(pk=job_id, status=ExportStatus.RUNNING).update(
        status=ExportStatus.DONE,
        file=result.file_name,
        manifest=result.manifest,
        row_count=result.row_count,
        sha256=result.sha256,
        error="",
        finished_at=timezone.now(),
    )
    return ExportJob.objects.get(pk=job_id)


def export_mark_failed(*, job_id: int, error: str) -> None:
    """Record a failure (also used by the task when its retries run out or its time limit strikes)."""
    ExportJob.objects.filter(pk=job_id).exclude(status=ExportStatus.DONE).update(
        status=ExportStatus.FAILED, error=error[:MAX_ERROR_CHARS], finished_at=timezone.now()
    )


def exports_fail_stale() -> int:
    """Mark jobs whose worker vanished (killed by the hard time limit, or lost) as failed; returns how many.
    Run periodically: a hard time limit kills the build before it can record anything itself."""
    stale_before = timezone.now() - STALE_AFTER
    return ExportJob.objects.filter(status=ExportStatus.RUNNING, started_at__lt=stale_before).update(
        status=ExportStatus.FAILED,
        error="The worker building this export stopped (time limit or crash); request it again.",
        finished_at=timezone.now(),
    )


def exports_requeue_stale(*, stale_after_s: float | None = None) -> list[int]:
    """Send the build task again for jobs still queued `stale_after_s` after they were requested (their
    task was lost: sending it failed after the commit, or a broker outage dropped it); their ids. Safe
    when the first task is merely late: only one build claims the job (`_claim`), the other does nothing.
    Running jobs whose worker vanished are exports_fail_stale's. A job is re-sent at most once per
    `stale_after_s` (a marker in the cache), so a long queue does not fill up with copies."""
    from django.core.cache import cache

    from annotate.exports.tasks import build_export

    stale_after_s = settings.STALE_WORK_AFTER_S if stale_after_s is None else stale_after_s
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    ids = list(
        ExportJob.objects.filter(status=ExportStatus.QUEUED, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )
    resent = [pk for pk in ids if cache.add(f"export-resent:{pk}", 1, timeout=max(1, int(stale_after_s)))]
    for job_id in resent:
        build_export.delay(job_id)
    if resent:
        logger.warning("stale exports: build re-sent for %s", resent)
    return resent


def _release(job_id: int) -> None:
    ExportJob.objects.filter(pk=job_id, status=ExportStatus.RUNNING).update(
        status=ExportStatus.QUEUED, started_at=None
    )


# The database went away or the snapshot was cancelled: worth a retry. psycopg's own classes too, because
# the rows are read through the driver's server-side cursor, below Django's error wrapping.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


# --- Building -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    file_name: str
    row_count: int
    sha256: str
    size: int
    manifest: dict[str, Any]


def export_storage_dir(job_id: int) -> str:
    return f"exports/{job_id}"


def _rows(spec: ExportSpec, schema: str, provenance: dict[str, Any]) -> Iterator[list[tuple[Any, ...]]]:
    """The dataset rows, chunk by chunk, read inside one snapshot (the caller holds it open)."""
    if schema == ExportSchema.JUDGMENTS_RAW:
        builder: ComparisonBuilder | RawBuilder = RawBuilder()
        query = queries.raw_query(spec)
    else:
        builder = ComparisonBuilder(spec, queries.sampling_configs())
        query = queries.comparison_query(spec)
    provenance["builder"] = builder
    flat = schema == ExportSchema.PAIRWISE_FLAT
    for chunk in queries.stream(query, chunk_rows=CHUNK_ROWS):
        rows = builder.rows(chunk)
        del chunk
        yield [flat_row(r) for r in rows] if flat else rows
    rows = builder.finish()
    yield [flat_row(r) for r in rows] if flat else rows


def write_dataset(spec: ExportSpec, schema: str, fmt: str, out: HashingFile) -> tuple[int, dict[str, Any]]:
    """Stream the dataset of (spec, schema) into `out` as `fmt`; returns the row count and provenance
    (guideline versions, batches, and where the time went). Opens and closes its own snapshot."""
    with _no_cyclic_gc():
        return _write_dataset(spec, schema, fmt, out)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The rows are millions of short-lived tuples, dicts and lists without reference cycles (checked: a
    collection after an export finds nothing): reference counting frees them, while the cyclic collector,
    triggered every few hundred allocations, cost 15-25% of the export's CPU time. Back on at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _write_dataset(spec: ExportSpec, schema: str, fmt: str, out: HashingFile) -> tuple[int, dict[str, Any]]:
    columns = COLUMNS[schema]
    writer = open_writer(fmt, out, columns, row_group_rows=ROW_GROUP_ROWS)
    provenance: dict[str, Any] = {}
    row_count = 0
    read_s = write_s = 0.0
    clock = time.perf_counter
    with queries.snapshot():
        rows_iter = _rows(spec, schema, provenance)
        try:
            while True:
                t0 = clock()
                rows = next(rows_iter, None)
                t1 = clock()
                read_s += t1 - t0
                if rows is None:
                    break
                writer.write(rows)
                write_s += clock() - t1
                row_count += len(rows)
        finally:
            # On an error, stop the prefetching thread and close the cursor before the snapshot ends.
            rows_iter.close()
        versions: set[tuple[int, int]] = provenance["builder"].guideline_versions
        provenance["guideline_versions"] = versions
        provenance["batches"] = queries.batches_info(sorted({batch for batch, _ in versions}))
        provenance["sources"] = queries.source_mix(spec, raw=schema == ExportSchema.JUDGMENTS_RAW)
    t0 = clock()
    writer.close()
    provenance["timings"] = {"read_and_build_s": read_s, "write_s": write_s + clock() - t0}
    return row_count, provenance


class _TemporaryFile(File):
    """A finished temp file: FileSystemStorage moves it into place (no copy) when it is on the same disk;
    other storages (S3) stream it from disk."""

    def temporary_file_path(self) -> str:
        return str(self.file.name)


def _build(job: ExportJob) -> BuildResult:
    spec = parse_export_spec(job.spec, schema=job.schema)
    columns = COLUMNS[job.schema]
    directory = export_storage_dir(job.pk)
    file_name = f"{directory}/{job.schema}.{FILE_EXTENSIONS[job.format]}"
    temp_dir = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    started = time.perf_counter()
    temp = tempfile.NamedTemporaryFile(prefix=f"export-{job.pk}-", dir=temp_dir, delete=False)  # noqa: SIM115
    try:
        with temp:
            out = HashingFile(temp)
            row_count, provenance = write_dataset(spec, job.schema, job.format, out)
        stored_at = time.perf_counter()
        with open(temp.name, "rb") as data:
            # Deterministic names: a rebuild after a crash replaces its own earlier files.
            _replace(file_name, _TemporaryFile(data, name=Path(file_name).name))
    finally:
        Path(temp.name).unlink(missing_ok=True)
    finished = time.perf_counter()
    logger.info(
        "export %s: %s rows, %s bytes in %.1fs (read+build %.1fs, write %.1fs, store %.1fs)",
        job.pk,
        row_count,
        out.size,
        finished - started,
        provenance["timings"]["read_and_build_s"],
        provenance["timings"]["write_s"],
        finished - stored_at,
    )

    manifest = build_manifest(
        job_id=job.pk,
        schema=job.schema,
        fmt=job.format,
        file_name=file_name,
        row_count=row_count,
        sha256=out.sha256.hexdigest(),
        size=out.size,
        columns=columns,
        spec=spec.to_dict(),
        margins=MARGIN_PRESETS[spec.margin] if job.schema != ExportSchema.JUDGMENTS_RAW else None,
        batches=provenance["batches"],
        guideline_versions=provenance["guideline_versions"],
        created_at=job.created_at,
        sources=provenance["sources"],
    )
    card = render_dataset_card(
        job_id=job.pk, schema=job.schema, fmt=job.format, columns=columns, manifest=manifest
    )
    _replace(f"{directory}/manifest.json", ContentFile(orjson.dumps(manifest, option=orjson.OPT_INDENT_2)))
    _replace(f"{directory}/README.md", ContentFile(card.encode()))
    return BuildResult(file_name, row_count, manifest["sha256"], out.size, manifest)


def _replace(name: str, content: File) -> None:
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, content)
    if saved != name:  # a concurrent writer took the name between delete and save: not ours to keep
        default_storage.delete(saved)
        raise RuntimeError(f"Could not store {name}: the name is taken.")
