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


@task_postrun.connect
def _drop_broken_connections(task: object = None, **_: object) -> None:
    """What Django does after every request, after every task: a database connection that failed (e.g.
    PostgreSQL restarted under it) is closed, so the next task (a retry of this one, say) opens a new one.
    Celery's Django fixup closes connections only every CELERY_DB_REUSE_MAX tasks: without this, a worker
    thread kept its dead connection and every retry failed on it again ("the connection is closed")."""
    from django.db import connections

    if getattr(getattr(task, "request", None), "is_eager", False):
        return  # ran inside its caller (a request, a test): the caller's connection, the caller's business
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


# --- kombu 5.7 + Redis: a worker must not exit when the broker restarts ---------------------------------
# On a lost connection the consumer closes the old kombu connection. When that connection's channel still
# holds delivered, unacknowledged messages (acks_late tasks running or reserved), closing the channel tries
# to push them back into the queue through a Redis client it has to create first, from the transport's
# connection info; by then the transport has been detached from its connection (`client` is None), so
# kombu raises AttributeError("'NoneType' object has no attribute 'hostname'"), which Celery treats as
# unrecoverable: the worker process exits (seen in bench/soak.py). Nothing can be restored through a
# detached transport anyway, and nothing is lost by skipping it: the messages stay in Redis' unacked set
# (written there at delivery) and are handed out again after the visibility timeout, and the stale-work
# sweep re-sends stalled generation sooner. So skip the restore in exactly that state.
def _patch_kombu_redis_restore() -> None:
    try:
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - the Redis client is not installed (filesystem broker)
        return
    original = kombu_redis.QoS.restore_unacked_once
    if getattr(original, "_annotate_patched", False):
        return

    def restore_unacked_once(self: object, stderr: object = None) -> object:
        transport = getattr(getattr(self, "channel", None), "connection", None)
        if getattr(transport, "client", None) is None:
            return None
        return original(self, stderr)

    restore_unacked_once._annotate_patched = True  # type: ignore[attr-defined]
    kombu_redis.QoS.restore_unacked_once = restore_unacked_once  # type: ignore[method-assign]


_patch_kombu_redis_restore()
