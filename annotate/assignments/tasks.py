"""Periodic upkeep of leases."""

from __future__ import annotations

from celery import shared_task

from annotate.assignments.services import assignments_expire_stale


@shared_task(name="annotate.assignments.tasks.expire_stale_leases", acks_late=True, ignore_result=True)
def expire_stale_leases() -> int:
    """Release leases that ran out so their items can be claimed again. Safe to run twice: only
    still-active, run-out leases are touched, each under its row lock."""
    return assignments_expire_stale()
