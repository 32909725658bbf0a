"""The Celery application. Tasks live in each app's tasks.py and are discovered from INSTALLED_APPS."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

app = Celery("annotate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The request id travels with each task (a message header), so a task's log lines carry the id of the
# request that enqueued it; a task enqueued by beat or another task gets its own id.
from celery.signals import before_task_publish, task_postrun, task_prerun  # noqa: E402

REQUEST_ID_HEADER = "annotate_request_id"
_tokens: dict[str, object] = {}


@before_task_publish.connect
def _send_request_id(headers: dict | None = None, **_: object) -> None:
    from annotate.core.request_context import request_id

    rid = request_id.get()
    if headers is not None and rid:
        headers.setdefault(REQUEST_ID_HEADER, rid)


@task_prerun.connect
def _set_request_id(task_id: str | None = None, task: object = None, **_: object) -> None:
    from annotate.core.request_context import request_id

    request = getattr(task, "request", None)
    rid = getattr(request, REQUEST_ID_HEADER, None) or f"task-{task_id}"
    _tokens[str(task_id)] = request_id.set(str(rid)[:64])


@task_postrun.connect
def _reset_request_id(task_id: str | None = None, **_: object) -> None:
    from annotate.core.request_context import request_id

    token = _tokens.pop(str(task_id), None)
    if token is not None:
        request_id.reset(token)  # type: ignore[arg-type]
