"""The export build as a Celery task: thin, takes the job id, safe to run twice (services.export_build)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from annotate.exports.services import TRANSIENT_ERRORS, export_build, export_mark_failed, exports_fail_stale

# An export of millions of rows takes minutes, longer than the default task limits. The hard limit must stay
# below the Redis visibility timeout (CELERY_VISIBILITY_TIMEOUT, default 3600 s), or Redis would hand a
# running build to a second worker (which would find the job claimed and do nothing, but still).
SOFT_TIME_LIMIT = int(getattr(settings, "EXPORT_SOFT_TIME_LIMIT", 1800))
TIME_LIMIT = int(getattr(settings, "EXPORT_TIME_LIMIT", 1900))


class ExportTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # Retries ran out (the database stayed away) or the hard time limit killed the build: the job says so.
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            export_mark_failed(job_id=int(job_id), error=f"{type(exc).__name__}: {exc}")


@shared_task(
    base=ExportTask,
    name="annotate.exports.tasks.build_export",
    queue="exports",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def build_export(job_id: int) -> None:
    export_build(job_id)


@shared_task(name="annotate.exports.tasks.fail_stale_exports", acks_late=True, ignore_result=True)
def fail_stale_exports() -> int:
    """Periodic: exports whose worker died (a hard time limit leaves no trace) become visibly failed."""
    return exports_fail_stale()
