"""Export jobs: requesting, building once, claiming, failures, downloads, the admin, and a real worker."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.files.storage import default_storage
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from annotate.core.errors import ConflictError, DomainError
from annotate.exports import services
from annotate.exports.models import ExportJob
from annotate.exports.selectors import ExportNotFound, export_download, export_job_get
from annotate.exports.services import export_build, export_request
from tests import factories
from tests.exports.conftest import Data

ROOT = Path(__file__).resolve().parent.parent.parent


def some_judgments(data: Data, n: int = 3) -> Any:
    batch = data.batch()
    alice = data.user("alice")
    for _ in range(n):
        data.pairwise(data.item(batch), alice)
    return batch


def test_a_request_is_validated_stored_and_enqueued_after_commit(data: Data, _no_enqueue: list[int]) -> None:
    batch = some_judgments(data)
    erin = factories.UserFactory(username="erin", is_exporter=True)
    spec = {"batches": [batch.pk], "margin": "large"}
    job = export_request(user=erin, spec=spec, schema="trl_preference", format="parquet")
    assert job.status == "queued"
    assert job.requested_by == erin
    assert job.spec["batches"] == [batch.pk] and job.spec["margin"] == "large" and job.spec["ai"] == "none"
    assert _no_enqueue == [job.pk]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"spec": {"min_agreement": 2}}, "min_agreement"),
        ({"schema": "csv"}, "schema"),
        ({"format": "xlsx"}, "format"),
        ({"spec": {"batches": [987654]}}, "batches"),
    ],
)
def test_a_bad_request_names_the_field_and_stores_nothing(
    data: Data, _no_enqueue: list[int], kwargs: dict[str, Any], field: str
) -> None:
    request = {"spec": {}, "schema": "trl_preference", "format": "jsonl", **kwargs}
    with pytest.raises(DomainError) as caught:
        export_request(user=None, **request)
    assert caught.value.field == field
    assert not ExportJob.objects.exists()
    assert _no_enqueue == []


def test_building_twice_gives_one_file_and_the_same_job(data: Data) -> None:
    some_judgments(data)
    job = export_request(user=None, spec={}, schema="trl_preference", format="jsonl")
    first = export_build(job.pk)
    assert first is not None and first.status == "done" and first.row_count == 3
    second = export_build(job.pk)
    assert second is not None
    assert (second.pk, second.status, second.sha256, second.finished_at, second.file.name) == (
        first.pk, "done", first.sha256, first.finished_at, first.file.name,
    )  # fmt: skip
    _, files = default_storage.listdir(f"exports/{job.pk}")
    assert sorted(files) == ["README.md", "manifest.json", "trl_preference.jsonl"]


def test_the_task_run_twice_builds_one_file_for_one_job(data: Data) -> None:
    from annotate.exports.tasks import build_export

    some_judgments(data)
    job = export_request(user=None, spec={}, schema="trl_preference", format="parquet")
    build_export(job.pk)
    job.refresh_from_db()
    finished_at = job.finished_at
    build_export(job.pk)
    job.refresh_from_db()
    assert (job.status, job.row_count, job.finished_at) == ("done", 3, finished_at)
    assert ExportJob.objects.count() == 1
    assert sorted(default_storage.listdir(f"exports/{job.pk}")[1]) == [
        "README.md", "manifest.json", "trl_preference.parquet",
    ]  # fmt: skip


def test_the_export_reads_one_repeatable_read_snapshot(data: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    from annotate.exports import queries
    from annotate.exports.rows import ComparisonBuilder

    batch = some_judgments(data)
    monkeypatch.setattr(services, "CHUNK_ROWS", 1)
    seen: dict[str, Any] = {}
    real_configs, real_rows = queries.sampling_configs, ComparisonBuilder.rows

    def configs_and_isolation() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
            )
            seen["isolation"] = cursor.fetchone()
        return real_configs()

    def judge_meanwhile() -> None:
        # Another annotator submits while the export is half-way: a new item and judgment, committed.
        data.pairwise(data.item(batch), data.user("late"))
        connection.close()

    def rows_with_a_concurrent_write(self: Any, chunk: Any) -> Any:
        if "written" not in seen:
            seen["written"] = True
            writer = threading.Thread(target=judge_meanwhile)
            writer.start()
            writer.join()
        return real_rows(self, chunk)

    monkeypatch.setattr(queries, "sampling_configs", configs_and_isolation)
    monkeypatch.setattr(ComparisonBuilder, "rows", rows_with_a_concurrent_write)
    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    built = export_build(job.pk)
    assert built is not None and built.status == "done"
    assert seen["isolation"] == ("repeatable read", "on")
    assert built.row_count == 3
    monkeypatch.undo()
    assert (
        export_build(ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl").pk).row_count
        == 4
    )  # type: ignore[union-attr]


def test_a_job_another_worker_is_building_is_left_alone(data: Data) -> None:
    some_judgments(data)
    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    ExportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    again = export_build(job.pk)
    assert again is not None and again.status == "running"
    assert not default_storage.exists(f"exports/{job.pk}/trl_preference.jsonl")


def test_a_job_whose_worker_died_is_claimed_again(data: Data) -> None:
    some_judgments(data)
    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    long_ago = timezone.now() - services.STALE_AFTER - timedelta(minutes=1)
    ExportJob.objects.filter(pk=job.pk).update(status="running", started_at=long_ago)
    built = export_build(job.pk)
    assert built is not None and built.status == "done" and built.row_count == 3


def test_a_failed_job_records_the_error_and_is_not_rebuilt(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    some_judgments(data)
    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="parquet")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("disk on fire")

    monkeypatch.setattr(services, "open_writer", broken)
    failed = export_build(job.pk)
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "ValueError: disk on fire")
    assert failed.finished_at is not None and failed.row_count is None and failed.sha256 == ""
    monkeypatch.undo()
    assert export_build(job.pk).status == "failed"  # type: ignore[union-attr]


def test_a_failing_writer_stops_the_prefetching_thread_and_closes_the_cursor(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    some_judgments(data, n=12)
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)

    class FailsOnSecondChunk:
        calls = 0

        def write(self, rows: Any) -> None:
            self.calls += 1
            if self.calls == 2:
                raise OSError("No space left on device")

        def close(self) -> None:
            pass

    monkeypatch.setattr(services, "open_writer", lambda *args, **kwargs: FailsOnSecondChunk())
    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    failed = export_build(job.pk)
    assert failed is not None and failed.status == "failed" and "No space left" in failed.error
    assert not [t for t in threading.enumerate() if t.name == "export-prefetch" and t.is_alive()]
    with connection.cursor() as cursor:  # the connection is usable again, with no cursor left open
        cursor.execute("SELECT count(*) FROM pg_cursors")
        assert cursor.fetchone()[0] == 0


def test_jobs_whose_worker_died_are_marked_failed_by_the_sweep(data: Data) -> None:
    fresh = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    dead = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    ExportJob.objects.filter(pk=fresh.pk).update(status="running", started_at=timezone.now())
    long_ago = timezone.now() - services.STALE_AFTER - timedelta(seconds=1)
    ExportJob.objects.filter(pk=dead.pk).update(status="running", started_at=long_ago)
    assert services.exports_fail_stale() == 1
    dead.refresh_from_db()
    fresh.refresh_from_db()
    assert (dead.status, fresh.status) == ("failed", "running")
    assert "worker" in dead.error


def test_a_transient_database_error_gives_the_job_back_for_a_retry(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    some_judgments(data)
    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")

    def gone(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "write_dataset", gone)
    with pytest.raises(OperationalError):
        export_build(job.pk)
    job.refresh_from_db()
    assert (job.status, job.started_at) == ("queued", None)
    monkeypatch.undo()
    assert export_build(job.pk).status == "done"  # type: ignore[union-attr]


def test_the_task_marks_the_job_failed_when_retries_run_out(data: Data) -> None:
    from annotate.exports.tasks import build_export

    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    build_export.on_failure(OperationalError("still down"), "task-id", (job.pk,), {}, None)
    job.refresh_from_db()
    assert job.status == "failed" and "still down" in job.error


def test_the_task_is_routed_to_the_exports_queue_with_late_acks() -> None:
    from annotate.exports.tasks import build_export

    assert build_export.queue == "exports"
    assert build_export.acks_late is True
    assert build_export.soft_time_limit < build_export.time_limit


def test_an_export_must_run_outside_a_transaction(data: Data) -> None:
    from django.db import transaction

    from annotate.exports import queries

    with pytest.raises(RuntimeError), transaction.atomic(), queries.snapshot():
        pass


# --- downloads ----------------------------------------------------------------------------------------


def test_downloads_answer_409_until_done_then_the_file(data: Data) -> None:
    some_judgments(data)
    erin = factories.UserFactory(username="erin", is_exporter=True)
    job = export_request(user=erin, spec={}, schema="trl_preference", format="jsonl")
    with pytest.raises(ConflictError) as caught:
        export_download(user=erin, job_id=job.pk)
    assert caught.value.status_code == 409 and caught.value.code == "not_ready"
    ExportJob.objects.filter(pk=job.pk).update(status="running")
    with pytest.raises(ConflictError):
        export_download(user=erin, job_id=job.pk)
    ExportJob.objects.filter(pk=job.pk).update(status="queued")
    done = export_build(job.pk)
    assert done is not None
    download = export_download(user=erin, job_id=job.pk)
    with download.file as f:
        body = f.read()
    assert body.count(b"\n") == 3
    assert download.content_type == "application/x-ndjson"
    assert download.filename == f"export-{job.pk}-trl_preference.jsonl"
    assert download.sha256 == done.sha256
    manifest = export_download(user=erin, job_id=job.pk, part="manifest")
    with manifest.file as f:
        assert b'"sha256"' in f.read()


def test_exports_are_visible_to_their_requester_and_batch_admins_only(data: Data) -> None:
    erin = factories.UserFactory(username="erin", is_exporter=True)
    frank = factories.UserFactory(username="frank", is_exporter=True)
    admin_user = factories.UserFactory(username="ada", is_staff=True)
    job = export_request(user=erin, spec={}, schema="trl_preference", format="jsonl")
    assert export_job_get(user=erin, job_id=job.pk) == job
    assert export_job_get(user=admin_user, job_id=job.pk) == job
    with pytest.raises(ExportNotFound) as caught:
        export_job_get(user=frank, job_id=job.pk)
    assert caught.value.status_code == 404


def test_a_failed_export_download_says_why(data: Data) -> None:
    erin = factories.UserFactory(username="erin", is_exporter=True)
    job = export_request(user=erin, spec={}, schema="trl_preference", format="jsonl")
    services.export_mark_failed(job_id=job.pk, error="ValueError: boom")
    with pytest.raises(ConflictError) as caught:
        export_download(user=erin, job_id=job.pk)
    assert caught.value.code == "export_failed" and "boom" in caught.value.message


# --- admin ----------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(data: Data) -> Client:
    client = Client()
    client.force_login(factories.UserFactory(username="ada_admin", is_staff=True, is_superuser=True))
    return client


def test_the_admin_lists_download_links_for_done_jobs(data: Data, admin_client: Client) -> None:
    some_judgments(data)
    done = export_build(export_request(user=None, spec={}, schema="trl_preference", format="jsonl").pk)
    queued = export_request(user=None, spec={}, schema="trl_preference", format="parquet")
    assert done is not None
    page = admin_client.get(reverse("admin:exports_exportjob_changelist")).content.decode()
    data_url = reverse("admin:exports_exportjob_download", args=[done.pk, "data"])
    assert data_url in page
    assert reverse("admin:exports_exportjob_download", args=[queued.pk, "data"]) not in page
    response = admin_client.get(data_url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content).count(b"\n") == 3
    detail = admin_client.get(reverse("admin:exports_exportjob_change", args=[done.pk]))
    assert detail.status_code == 200 and data_url in detail.content.decode()
    early = admin_client.get(reverse("admin:exports_exportjob_download", args=[queued.pk, "data"]))
    assert early.status_code == 302  # back to the list with "still being built"


def test_the_batch_export_page_queues_a_job(data: Data, admin_client: Client, _no_enqueue: list[int]) -> None:
    batch = some_judgments(data)
    url = reverse("admin:exports_batch_export", args=[batch.pk])
    form = admin_client.get(url)
    assert form.status_code == 200 and b"pairwise_flat" in form.content
    response = admin_client.post(url, {"schema": "pairwise_flat", "format": "parquet"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{job.pk}/change/")
    assert (job.schema, job.format, job.spec["batches"]) == ("pairwise_flat", "parquet", [batch.pk])
    assert _no_enqueue == [job.pk]


def test_the_batch_admin_actions_export_the_selection(data: Data, admin_client: Client) -> None:
    from django.contrib.admin.sites import site

    from annotate.batches.models import Batch
    from annotate.exports.admin import batch_export_link, export_batches_parquet

    first, second = some_judgments(data), data.batch()
    request = RequestFactory().post("/admin/batches/batch/")
    request.user = factories.UserFactory(username="ada_admin")
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]
    export_batches_parquet(site._registry[Batch], request, Batch.objects.filter(pk__in=[first.pk, second.pk]))
    assert "queued as" in str(next(iter(request._messages)))  # type: ignore[attr-defined]
    job = ExportJob.objects.get()
    assert (job.schema, job.format) == ("trl_preference", "parquet")
    assert job.spec["batches"] == sorted([first.pk, second.pk])
    assert reverse("admin:exports_batch_export", args=[first.pk]) in batch_export_link(first)


# --- a real worker ----------------------------------------------------------------------------------------


@pytest.fixture
def exports_worker(transactional_db: None, redis_client: Any, tmp_path: Path) -> Any:
    """A real `celery worker -Q exports` on this test database and Redis broker (emptied first)."""
    import redis
    from django.conf import settings
    from django.db import connection

    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://") or connection.vendor != "postgresql":
        pytest.skip("the worker test needs PostgreSQL and a Redis broker")
    redis.Redis.from_url(broker).flushdb()
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOG_LEVEL": "WARNING",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    name = f"exports-test-{os.getpid()}@{socket.gethostname()}"
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        args = [
            str(ROOT / ".venv" / "bin" / "celery"), "-A", "annotate", "worker", "-Q", "exports", "-P", "solo",
            "-n", name, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ]  # fmt: skip
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc, log_path
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.mark.celery_worker
def test_a_real_worker_builds_the_export_from_the_exports_queue(
    data: Data, exports_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real .delay (not the recording stub): through Redis to the worker
    proc, log_path = exports_worker
    some_judgments(data, n=4)
    job = export_request(user=None, spec={}, schema="trl_preference", format="parquet")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in ("done", "failed"):
            break
        assert proc.poll() is None, log_path.read_text(errors="replace")
        time.sleep(0.3)
    assert job.status == "done", f"{job.status} {job.error}\n{log_path.read_text(errors='replace')[-3000:]}"
    assert job.row_count == 4
    assert default_storage.exists(job.file.name)
