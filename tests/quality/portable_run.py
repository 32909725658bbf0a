"""The quality feature end to end on the database DATABASE_URL names, in a process of its own: migrate,
seed_demo, judgments through the real claim and submit services, then the first visits of the dashboards
(which compute the reports), the stats API, the beat job's tasks and both recompute services. Prints one
JSON line: what the API returned, without the fields that differ from run to run (times, database ids).

tests/quality/test_portable.py runs it on SQLite (the embedded default of `make run`) and on PostgreSQL and
compares the two outputs.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from annotate.accounts.models import User  # noqa: E402
from annotate.assignments import services as assignment_services  # noqa: E402
from annotate.batches.models import Batch, Item  # noqa: E402
from annotate.core.choices import Mode, Strength, Track  # noqa: E402
from annotate.judgments.models import Judgment  # noqa: E402
from annotate.judgments.services import JudgmentInput, judgment_submit  # noqa: E402
from annotate.quality import services as quality_services  # noqa: E402
from annotate.quality.models import QualityReport  # noqa: E402
from annotate.quality.tasks import recompute_batch_quality, recompute_track_quality  # noqa: E402

ANNOTATORS = ("alice", "bob", "carol")
STRENGTHS = list(Strength.values)
DAY_ONE = datetime(2026, 3, 1, tzinfo=UTC)
LAST_MICROSECOND = timedelta(days=1, microseconds=-1)
TIMES_OF_DAY = (LAST_MICROSECOND, timedelta(0), timedelta(hours=12))
VOLATILE = {"computed_at", "duration_ms", "batch", "annotator_id", "pseudonym"}  # ids, random, times


def answer(name: str, item: Item, shown: list[Any], n: int) -> JudgmentInput:
    """A deterministic answer that depends on the item and the annotator (not on the display order), so
    the annotators agree on some items and not on others."""
    key = sum(len(turn.get("content", "")) for turn in item.conversation)
    by_model = sorted(shown, key=lambda r: (r.model_name, r.slot))
    if name == "bob" and key % 3 == 0:
        by_model.reverse()
    if name == "carol" and key % 2 == 0:
        by_model = sorted(shown, key=lambda r: (-len(r.content), r.slot))
    data = JudgmentInput(idempotency_key=f"{name}-{item.pk:08d}", time_spent_ms=1000 + (key * 37 + n) % 9000)
    if item.batch.mode == Mode.PAIRWISE:
        data.chosen = by_model[0].pk
        data.strength = STRENGTHS[(key + n) % len(STRENGTHS)]
    else:
        data.ranking = [r.pk for r in by_model]
    return data


def annotate(batch: Batch, limit: int) -> int:
    done = 0
    for n, name in enumerate(ANNOTATORS):
        user = User.objects.get(username=name)
        assignment_services.guidelines_mark_seen(annotator=user, batch=batch)
        for _ in range(limit):
            assignment = assignment_services.assignment_claim_next(annotator=user, batch=batch)
            if assignment is None:
                break
            data = answer(name, assignment.item, list(assignment.shown_responses), n)
            judgment_submit(annotator=user, assignment_id=assignment.pk, data=data)
            done += 1
    return done


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def get(client: Client, url: str, *needles: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:2000])
    if response.headers["Content-Type"].startswith("application/json"):
        return response.json()
    page = response.content.decode()
    for needle in needles:
        assert needle in page, (url, needle)
    return None


def main() -> None:
    setup_test_environment()
    # Display orders are shuffled; a seeded generator makes them (and so the position figures) the same on
    # both databases.
    assignment_services._random = random.Random(20261128)  # type: ignore[assignment]
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0, stdout=io.StringIO())
    batches = list(Batch.objects.filter(track=Track.HELPFULNESS).order_by("name"))
    assert {b.mode for b in batches} == {Mode.PAIRWISE, Mode.RANKING}, batches
    counts = {b.mode: annotate(b, limit=8) for b in batches}
    # Spread the pairwise judgments over four UTC days, some a microsecond before midnight, some on it.
    pairwise = Judgment.objects.filter(batch__mode=Mode.PAIRWISE).order_by("pk")
    for n, pk in enumerate(pairwise.values_list("pk", flat=True)):
        at = DAY_ONE + timedelta(days=n % 4) + TIMES_OF_DAY[n % len(TIMES_OF_DAY)]
        Judgment.objects.filter(pk=pk).update(created_at=at)
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    out: dict[str, Any] = {"judgments": counts, "batches": {}}
    # First visits: no report yet, so the dashboards compute them.
    assert not QualityReport.objects.exists()
    for batch in batches:
        page = f"/quality/batches/{batch.pk}/"
        get(client, page, 'id="leaderboard-table"', 'id="annotator-table"', "alice")
    get(client, f"/quality/tracks/{Track.HELPFULNESS}/", 'id="leaderboard-table"', "Krippendorff")
    # The beat job's tasks, then the services the recompute buttons call.
    due = quality_services.quality_due()
    for batch_id in due.batches:
        recompute_batch_quality(batch_id)
    for track in due.tracks:
        recompute_track_quality(track)
    for batch in batches:
        quality_services.quality_recompute_batch(batch_id=batch.pk)
        out["batches"][batch.mode] = scrub(get(client, f"/api/v1/stats/batches/{batch.pk}/"))
    quality_services.quality_recompute_track(track=Track.HELPFULNESS)
    out["track"] = scrub(get(client, f"/api/v1/stats/tracks/{Track.HELPFULNESS}/"))
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
