"""Create the demo admin, annotators and batches. Safe to run any number of times."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from annotate.accounts.models import Qualification, User
from annotate.batches.demo_content import DEMO_BATCHES, validate_demo_content
from annotate.batches.models import Batch, BatchStatus, ItemSource
from annotate.batches.services import NewItem, items_add
from annotate.core.choices import Track

ADMIN = ("admin", "admin-demo-pass")
ANNOTATOR_PASSWORD = "annotate-demo"
# username -> tracks; carol alone is qualified (and has consented) for safety.
ANNOTATORS: dict[str, list[str]] = {
    "alice": [Track.HELPFULNESS],
    "bob": [Track.HELPFULNESS],
    "carol": [Track.HELPFULNESS, Track.SAFETY],
}
DEMO_OVERLAP = 3


class Command(BaseCommand):
    help = "Create demo users (admin, alice, bob, carol) and three demo batches with items and responses."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        validate_demo_content()
        admin = self._user(ADMIN[0], ADMIN[1], is_staff=True, is_superuser=True, is_exporter=True)
        for username, tracks in ANNOTATORS.items():
            user = self._user(username, ANNOTATOR_PASSWORD)
            for track in tracks:
                qualification, _ = Qualification.objects.get_or_create(
                    user=user, track=track, defaults={"granted_by": admin}
                )
                if track == Track.SAFETY and qualification.consented_at is None:
                    qualification.consented_at = timezone.now()
                    qualification.save(update_fields=["consented_at"])

        for spec in DEMO_BATCHES:
            batch, created = Batch.objects.get_or_create(
                name=spec["name"],
                defaults={
                    "track": spec["track"],
                    "mode": spec["mode"],
                    "responses_per_item": spec["responses_per_item"],
                    "overlap": DEMO_OVERLAP,
                    "guidelines": spec["guidelines"],
                    "status": BatchStatus.OPEN,
                    "opened_at": timezone.now(),
                    "created_by": admin,
                },
            )
            added = items_add(
                batch=batch,
                source=ItemSource.DEMO,
                new_items=(
                    NewItem(
                        conversation=item["conversation"],
                        responses=[(r["model"], r["content"]) for r in item["responses"]],
                        metadata=item.get("metadata", {}),
                    )
                    for item in spec["items"]
                ),
            )
            verb = "created" if created else "kept"
            self.stdout.write(
                f"{verb} batch {batch.name!r}: {added.created} items added, {added.duplicates} present"
            )
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _user(self, username: str, password: str, **flags: bool) -> User:
        user, created = User.objects.get_or_create(username=username, defaults=flags)
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user
