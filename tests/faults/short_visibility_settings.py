"""A worker whose broker redelivers an unacknowledged task after 1 s (tests/faults/test_task_delivery.py):
shorter than a run, which the project's settings refuse on purpose."""

from tests.generation.worker_settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
    "visibility_timeout": 1,
    "unacked_restore_interval": 0.5,
    "unacked_restore_throttle": 1,
}
