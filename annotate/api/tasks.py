"""Periodic housekeeping of the API's own rows (thin: the work is in services)."""

from __future__ import annotations

import logging

from celery import shared_task

from annotate.api import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def purge_api_records() -> dict[str, int]:
    """Forget old idempotency records and delete expired tokens; safe to run twice."""
    purged = services.api_records_purge()
    logger.info("purged %s", purged)
    return purged
