"""`seed_demo` builds the demo world once and leaves it as it is when run again."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotate.accounts.models import Qualification, User
from annotate.accounts.selectors import usable_tracks
from annotate.batches.models import Batch, Item, ItemStatus, Response
from annotate.core.choices import Mode, Track

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "qualifications": Qualification.objects.count(),
        "batches": Batch.objects.count(),
        "items": Item.objects.count(),
        "responses": Response.objects.count(),
    }


def test_seed_demo_twice_gives_the_same_rows() -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    first = counts()
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert counts() == first
    assert first["users"] == 4
    assert first["batches"] == 3


def test_seed_demo_builds_the_three_demo_batches_ready_to_judge() -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    kinds = {(b.track, b.mode, b.responses_per_item) for b in Batch.objects.all()}
    assert kinds == {
        (Track.HELPFULNESS, Mode.PAIRWISE, 2),
        (Track.HELPFULNESS, Mode.RANKING, 4),
        (Track.SAFETY, Mode.PAIRWISE, 2),
    }
    for batch in Batch.objects.all():
        items = batch.items.all()
        assert items.count() >= 12
        assert all(item.status == ItemStatus.READY for item in items)
        assert all(item.responses.count() == batch.responses_per_item for item in items)
        assert any(len(item.conversation) >= 3 for item in items), "some items are multi-turn"
    assert Response.objects.filter(content__contains="```").exists(), "code blocks among the responses"
    assert Item.objects.filter(conversation__icontains="<script>").exists(), "an XSS-looking prompt"


def test_seed_demo_users_and_qualifications() -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin-demo-pass")
    assert usable_tracks(User.objects.get(username="carol")) == {Track.HELPFULNESS, Track.SAFETY}
    for name in ("alice", "bob"):
        user = User.objects.get(username=name)
        assert user.check_password("annotate-demo")
        assert usable_tracks(user) == {Track.HELPFULNESS}
