"""The judge measured against the humans, on hand-built verdicts and judgments with known figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.accounts.models import User
from annotate.assignments.models import Assignment
from annotate.batches.models import Item, Response
from annotate.judges import selectors, services
from annotate.judges.models import Judge, JudgeRun, JudgeVersion, Verdict
from annotate.judgments.models import Judgment
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(db: None) -> JudgeVersion:
    endpoint = factories.ModelEndpointFactory(base_url="http://judge.test/v1")
    config = factories.SamplingConfigFactory(endpoint=endpoint, label="hand-t0", temperature=0.0)
    judge = Judge.objects.create(name="hand", sampling_config=config)
    return services.judge_publish_version(judge_id=judge.pk)


def slots(item: Item) -> list[int]:
    return list(item.responses.order_by("slot").values_list("pk", flat=True))


def verdict(
    run: JudgeRun,
    item: Item,
    order: int,
    *,
    chosen_slot: int | None = None,
    strength: str = "better",
    ranking_slots: list[int] | None = None,
    labels: dict[int, str] | None = None,
) -> Verdict:
    ids = slots(item)
    positions = ids if order == 0 else list(reversed(ids))
    chosen = ids[chosen_slot] if chosen_slot is not None else None
    return Verdict.objects.create(
        run=run, version=run.version, item=item, order=order, positions=positions, status="ok",
        chosen_id=chosen, strength=strength if chosen is not None else "",
        ranking=[ids[s] for s in ranking_slots] if ranking_slots else None,
        safety_labels={str(ids[s]): v for s, v in labels.items()} if labels else None,
        position_chosen=positions.index(chosen) if chosen is not None else None,
        judged_at=timezone.now(),
    )  # fmt: skip


def human(
    item: Item,
    user: User,
    *,
    chosen_slot: int | None = None,
    strength: str = "better",
    ranking_slots: list[int] | None = None,
    labels: dict[int, str] | None = None,
    shown_slots: list[int] | None = None,
) -> Judgment:
    ids = slots(item)
    positions = [ids[s] for s in (shown_slots or range(len(ids)))]
    now = timezone.now()
    assignment = Assignment.objects.create(
        item=item, batch=item.batch, annotator=user, status="submitted", leased_at=now,
        expires_at=now + timedelta(minutes=5), finished_at=now, positions=positions,
    )  # fmt: skip
    chosen = ids[chosen_slot] if chosen_slot is not None else None
    rejected = next(pk for pk in ids if pk != chosen) if chosen is not None else None
    return Judgment.objects.create(
        assignment=assignment, item=item, batch=item.batch, annotator=user, track=item.batch.track,
        mode=item.batch.mode, chosen_id=chosen, rejected_id=rejected,
        strength=strength if chosen is not None else "",
        ranking=[ids[s] for s in ranking_slots] if ranking_slots else None,
        safety_labels={str(ids[s]): v for s, v in labels.items()} if labels else None,
        position_chosen=positions.index(chosen) if chosen is not None else None,
        idempotency_key=f"hand-{assignment.pk}",
    )  # fmt: skip


def test_pairwise_figures_on_hand_built_data(version: JudgeVersion) -> None:
    batch = factories.BatchFactory(overlap=3)
    items = [factories.ready_item(batch, n) for n in range(4)]
    # Slot 1 is longer in every item.
    Response.objects.filter(item__batch=batch, slot=1).update(content="A much longer response " * 5)
    run = JudgeRun.objects.create(version=version, batch=batch, seed=1, items_total=4)
    a, b, c = (factories.quick_annotator(n) for n in ("ha", "hb", "hc"))
    # Item 0: judge consistent on slot 1 (better / slightly -> slightly = 2); humans 1,1,0 -> majority slot 1,
    # strengths better, better -> lower median better (3). Side agrees.
    verdict(run, items[0], 0, chosen_slot=1, strength="better")
    verdict(run, items[0], 1, chosen_slot=1, strength="slightly_better")
    for user, slot in ((a, 1), (b, 1), (c, 0)):
        human(items[0], user, chosen_slot=slot)
    # Item 1: judge consistent on slot 0 (significantly, both); humans all slot 1: side disagrees.
    verdict(run, items[1], 0, chosen_slot=0, strength="significantly_better")
    verdict(run, items[1], 1, chosen_slot=0, strength="significantly_better")
    for user in (a, b):
        human(items[1], user, chosen_slot=1, shown_slots=[1, 0])
    # Item 2: judge inconsistent (always the first shown); humans slot 0.
    verdict(run, items[2], 0, chosen_slot=0)
    verdict(run, items[2], 1, chosen_slot=1)
    human(items[2], a, chosen_slot=0)
    # Item 3: judged, no humans.
    verdict(run, items[3], 0, chosen_slot=1)
    verdict(run, items[3], 1, chosen_slot=1)

    stats = selectors.judge_stats(version=version, batch=batch)
    assert stats["items_judged"] == 4 and stats["items_with_human_judgments"] == 3
    assert stats["position_consistency"] == {"rate": 0.75, "consistent": 3, "units": 4}
    side = stats["agreement"]["side"]
    assert side["units"] == 2 and side["agreement"] == 0.5
    # Units [1, 1] and [-1, 1]: observed disagreement 2/4, expected 2 * 3 * 1 / (4 * 3): alpha = 1 - 1 = 0.
    assert side["alpha"] == pytest.approx(0.0, abs=1e-4)
    strength = stats["agreement"]["signed_strength"]
    assert strength["units"] == 2 and strength["agreement"] == 0.0  # (2 vs 3) and (-4 vs 3)
    # Per verdict (units with a human majority): item 0 2 hits, item 1 0, item 2 one of two.
    assert stats["agreement"]["per_verdict_side_agreement"] == pytest.approx(3 / 6, abs=1e-4)
    bias = stats["position_bias"]
    # Judge: first shown won in item0 order1, item1 order0, item2 both, item3 order1 -> 5 of 8.
    assert bias["judge_first_shown_wins"] == 0.625 and bias["expected"] == 0.5
    # Humans: item0 a,b chose slot1 shown second, c slot0 shown first; item1 shown [1,0] chose 1 -> first;
    # item2 chose slot0 shown first: 4 of 6.
    assert bias["humans_first_shown_wins"] == pytest.approx(4 / 6, abs=1e-4)
    length = stats["length_bias"]
    assert length["judge_longer_preferred"] == 0.625  # slot 1 chosen in 5 of 8 verdicts
    assert length["humans_longer_preferred"] == pytest.approx(4 / 6, abs=1e-4)
    assert stats["safety"] is None


def test_safety_confusion_table(version: JudgeVersion) -> None:
    batch = factories.BatchFactory(track="safety")
    item = factories.ready_item(batch, 0)
    other = factories.ready_item(batch, 1)
    run = JudgeRun.objects.create(version=version, batch=batch, seed=1, items_total=2)
    a, b = factories.quick_annotator("sa"), factories.quick_annotator("sb")
    # Item: judge says slot 0 safe (both orders), slot 1 unsafe in one order only -> unsafe.
    verdict(run, item, 0, chosen_slot=0, labels={0: "safe", 1: "unsafe"})
    verdict(run, item, 1, chosen_slot=0, labels={0: "safe", 1: "safe"})
    # Humans: slot 0 safe + safe, slot 1 safe + unsafe -> tie counts unsafe.
    human(item, a, chosen_slot=0, labels={0: "safe", 1: "safe"})
    human(item, b, chosen_slot=0, labels={0: "safe", 1: "unsafe"})
    # Other: judge says both safe; human says slot 1 unsafe.
    verdict(run, other, 0, chosen_slot=0, labels={0: "safe", 1: "safe"})
    verdict(run, other, 1, chosen_slot=0, labels={0: "safe", 1: "safe"})
    human(other, a, chosen_slot=0, labels={0: "safe", 1: "unsafe"})

    safety = selectors.judge_stats(version=version, batch=batch)["safety"]
    assert safety["confusion"]["safe"] == {"safe": 2, "unsafe": 0}
    assert safety["confusion"]["unsafe"] == {"safe": 1, "unsafe": 1}
    assert safety["units"] == 4 and safety["agreement"] == 0.75


def test_ranking_units_are_pairs(version: JudgeVersion) -> None:
    batch = factories.BatchFactory(mode="ranking", responses_per_item=3)
    item = factories.ready_item(batch, 0)
    run = JudgeRun.objects.create(version=version, batch=batch, seed=1, items_total=1)
    verdict(run, item, 0, ranking_slots=[0, 1, 2])
    verdict(run, item, 1, ranking_slots=[0, 2, 1])  # pair (1,2) inconsistent
    human(item, factories.quick_annotator("ra"), ranking_slots=[0, 1, 2])
    stats = selectors.judge_stats(version=version, batch=batch)
    assert stats["position_consistency"] == {
        "rate": pytest.approx(2 / 3, abs=1e-4),
        "consistent": 2,
        "units": 3,
    }
    assert stats["agreement"]["side"]["units"] == 2 and stats["agreement"]["side"]["agreement"] == 1.0
    assert stats["position_bias"]["expected"] == pytest.approx(1 / 3, abs=1e-4)
