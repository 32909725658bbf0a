"""Stored quality reports: the figures of a batch and a track, computed from judgments read from the
database, per-annotator statistics and flags, recomputation by the beat job and its idempotence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings

from annotate.accounts.models import User
from annotate.quality import metrics
from annotate.quality.models import AnnotatorStats, QualityReport
from annotate.quality.services import quality_due, quality_recompute_batch, quality_recompute_track
from annotate.quality.tasks import recompute_due_quality
from tests.quality.conftest import T0, Builder

pytestmark = pytest.mark.django_db

GOLD = {"slot": 0, "min_strength": "better"}


def _pairwise_batch(build: Builder) -> dict[str, Any]:
    batch = build.batch(flag_min_evidence=3, flag_min_agreement=0.5, flag_min_gold_accuracy=0.7)
    alice, bob, carol = build.user("alice"), build.user("bob"), build.user("carol")
    robot = build.user("robot", kind=User.Kind.AI)
    items = [build.item(batch) for _ in range(4)]
    gold = build.item(batch, gold=GOLD)
    day2 = T0 + timedelta(days=1)
    # item 0: 0 0 0 | item 1: 0 0 1 | item 2: 1 1 | item 3: 0 (alone) | gold: 0 0 1
    build.pairwise(items[0], alice, 0, "better", time_ms=1000)
    build.pairwise(items[0], bob, 0, "significantly_better", swapped=True, time_ms=3000)
    build.pairwise(items[0], carol, 0, "better")
    build.pairwise(items[1], alice, 0, "slightly_better", time_ms=2000, at=day2)
    build.pairwise(items[1], bob, 0, "better", at=day2)
    build.pairwise(items[1], carol, 1, "negligibly_better_or_unsure", at=day2)
    build.pairwise(items[2], alice, 1, "better", swapped=True, time_ms=9000, at=day2)
    build.pairwise(items[2], bob, 1, "better", at=day2)
    build.pairwise(items[3], alice, 0, "better", at=day2)
    build.pairwise(gold, alice, 0, "better", at=day2)  # right
    build.pairwise(gold, bob, 0, "slightly_better", at=day2)  # right side, too weak: wrong
    build.pairwise(gold, carol, 1, "significantly_better", at=day2)  # wrong
    build.pairwise(items[0], robot, 1, "better")  # an AI judge: left out of human agreement
    return {"batch": batch, "alice": alice, "bob": bob, "carol": carol, "robot": robot}


def test_batch_report_matches_the_statistics_of_the_hand_listed_units(build: Builder) -> None:
    made = _pairwise_batch(build)
    report = quality_recompute_batch(batch_id=made["batch"].pk)
    sides = [[0, 0, 0], [0, 0, 1], [1, 1], [0], [0, 0, 1]]
    signed = [[-3, -4, -3], [-2, -3, 1], [3, 3], [-3], [-3, -2, 4]]
    assert report.n_judgments == 12 and report.n_annotators == 3 and report.n_items == 5
    rate = metrics.agreement_rate(sides)
    assert (report.agreement_rate, report.agreement_items) == (pytest.approx(rate.rate), 4)
    nominal = metrics.krippendorff_alpha(sides)
    assert report.alpha_nominal == pytest.approx(nominal.alpha) and report.alpha_nominal_items == 4
    ordinal = metrics.krippendorff_alpha(signed, "ordinal", categories=metrics.SIGNED_STRENGTH_SCALE)
    assert report.alpha_ordinal == pytest.approx(ordinal.alpha) and report.alpha_ordinal_items == 4
    kappa = metrics.fleiss_kappa(sides)  # 3 judgments per item for most: item 2 (two) is left out
    assert report.fleiss_kappa == pytest.approx(kappa.kappa)
    assert (report.fleiss_kappa_items, report.fleiss_kappa_raters) == (3, 3)
    assert report.alpha_ranking is None
    assert report.strength_distribution == {
        "significantly_better": 2,
        "better": 7,
        "slightly_better": 2,
        "negligibly_better_or_unsure": 1,
    }
    assert report.judgments_per_day == [
        {"day": "2026-03-01", "judgments": 3, "cumulative": 3},
        {"day": "2026-03-02", "judgments": 9, "cumulative": 12},
    ]


def test_annotator_statistics_and_flags(build: Builder) -> None:
    made = _pairwise_batch(build)
    report = quality_recompute_batch(batch_id=made["batch"].pk)
    stats = {s.annotator_id: s for s in report.annotators.all()}
    assert made["robot"].pk not in stats
    alice, bob, carol = (stats[made[name].pk] for name in ("alice", "bob", "carol"))
    assert (alice.judgments, bob.judgments, carol.judgments) == (5, 4, 3)
    assert alice.median_time_ms == 5000  # 1000 2000 5000 5000 9000
    # Agreement with the majority of the others (undefined where the others tie):
    # alice: item 0 yes, item 1 (0 vs 1) -, item 2 yes, gold (0 vs 1) -  -> 2 / 2
    # carol: item 0 yes, item 1 no, gold no -> 1 / 3
    assert (alice.agreement, alice.agreement_n) == (1.0, 2)
    assert (carol.agreement, carol.agreement_n) == (pytest.approx(1 / 3), 3)
    # Gold: alice right, bob too weak, carol wrong side.
    assert (alice.gold_accuracy, bob.gold_accuracy, carol.gold_accuracy) == (1.0, 0.0, 0.0)
    assert alice.gold_n == 1
    # Position: alice always chose the response on the left (item 2 showed slot 1 on the left); bob chose
    # the right one on items 0 (shown swapped) and 2 (slot 1, not swapped).
    assert (alice.left_share, alice.left_n) == (1.0, 5)
    assert (bob.left_share, bob.left_n) == (0.5, 4)
    # Length: slot 1 is the longer response; alice chose it once.
    assert (alice.longer_share, alice.longer_n) == (pytest.approx(1 / 5), 5)
    assert carol.strength_distribution == {
        "better": 1,
        "negligibly_better_or_unsure": 1,
        "significantly_better": 1,
    }
    # Carol is under the agreement threshold with enough evidence; gold has too little evidence (1 < 3).
    assert carol.flagged and carol.flag_reasons == [
        "agreement with the majority 0.33 < 0.50 over 3 judgments"
    ]
    assert not alice.flagged and not bob.flagged


def test_gold_flag_needs_enough_gold_judgments(build: Builder) -> None:
    made = _pairwise_batch(build)
    batch = made["batch"]
    batch.flag_min_evidence = 1
    batch.save()
    report = quality_recompute_batch(batch_id=batch.pk)
    bob = report.annotators.get(annotator=made["bob"])
    assert bob.flagged and any(r.startswith("gold accuracy 0.00 < 0.70 over 1") for r in bob.flag_reasons)


def test_leaderboard_counts_human_non_gold_comparisons_with_ties_as_halves(build: Builder) -> None:
    made = _pairwise_batch(build)
    report = quality_recompute_batch(batch_id=made["batch"].pk)
    board = report.leaderboard["models"]
    # 9 human comparisons of non-gold items: model-a (slot 0) won 6, model-b 2, and carol's "negligibly
    # better / unsure" for model-b is a tie, half a win to each.
    assert board["names"] == ["model-a", "model-b"]
    assert board["total_comparisons"] == 9
    a, b = board["rows"]
    assert a["comparisons"] == b["comparisons"] == 9
    assert a["wins"] == pytest.approx(6.5) and b["wins"] == pytest.approx(2.5)
    expected = metrics.bradley_terry([[0, 6], [2, 0]], [[0, 1], [1, 0]], rounds=0)
    assert a["score"] == pytest.approx(expected.scores[0], abs=1e-6)
    assert a["lower"] <= a["score"] <= a["upper"]
    assert board["win_rate"][0][1] == pytest.approx(6.5 / 9)
    assert board["comparisons"] == [[0, 9], [9, 0]]
    assert report.leaderboard["configs"] == {}


def test_leaderboard_per_sampling_config(build: Builder) -> None:
    batch = build.batch()
    alice = build.user("alice")
    for _ in range(3):
        item = build.item(batch, models=["m", "m"], configs=[build.config_cold, build.config_hot])
        build.pairwise(item, alice, 1)
    board = quality_recompute_batch(batch_id=batch.pk).leaderboard
    assert board["models"] == {}  # one model against itself tells nothing
    assert board["configs"]["names"] == ["hot (t=1.2)", "cold (t=0.2)"]
    assert board["configs"]["regularized"]  # hot never lost: its plain MLE is unbounded


def test_ranking_batch_alpha_uses_kendall_tau_over_slots(build: Builder) -> None:
    batch = build.batch(k=3)
    alice, bob, carol = build.user("alice"), build.user("bob"), build.user("carol")
    a, b, gold = build.item(batch), build.item(batch), build.item(batch, gold={"ranking": [2, 1, 0]})
    build.ranking(a, alice, [0, 1, 2])
    build.ranking(a, bob, [0, 2, 1])
    build.ranking(a, carol, [1, 0, 2])
    build.ranking(b, alice, [2, 1, 0])
    build.ranking(b, bob, [2, 1, 0])
    build.ranking(gold, alice, [2, 0, 1])  # one of three pairs out of order
    build.ranking(gold, bob, [2, 1, 0])
    report = quality_recompute_batch(batch_id=batch.pk)
    units = [[(0, 1, 2), (0, 2, 1), (1, 0, 2)], [(2, 1, 0), (2, 1, 0)], [(2, 0, 1), (2, 1, 0)]]
    expected = metrics.krippendorff_alpha(units, distance=metrics.kendall_tau_distance)
    assert report.alpha_ranking == pytest.approx(expected.alpha) and report.alpha_ranking_items == 3
    top = [[u[0] for u in unit] for unit in units]
    assert report.agreement_rate == pytest.approx(metrics.agreement_rate(top).rate)
    assert report.alpha_ordinal is None
    stats = {s.annotator.username: s for s in report.annotators.select_related("annotator")}
    assert stats["alice"].gold_accuracy == pytest.approx(2 / 3)
    assert stats["bob"].gold_accuracy == 1.0
    assert stats["alice"].left_share is None
    board = report.leaderboard["models"]
    assert board["total_comparisons"] == 5 * 3  # gold left out; each ranking of 3 gives 3 pairs


def test_recomputing_replaces_the_report_and_its_rows(build: Builder) -> None:
    made = _pairwise_batch(build)
    first = quality_recompute_batch(batch_id=made["batch"].pk)
    second = quality_recompute_batch(batch_id=made["batch"].pk)
    assert first.pk == second.pk
    assert QualityReport.objects.count() == 1
    assert AnnotatorStats.objects.count() == 3


def test_track_report_spans_the_batches_of_the_track(build: Builder) -> None:
    one = _pairwise_batch(build)
    other = build.batch()
    item = build.item(other)
    build.pairwise(item, one["alice"], 1)
    build.pairwise(item, one["bob"], 1)
    report = quality_recompute_track(track="helpfulness")
    assert report.batch is None and report.n_judgments == 14
    assert report.agreement_items == 5
    assert not report.annotators.exists()
    assert quality_recompute_track(track="safety").n_judgments == 0


def test_the_beat_job_recomputes_only_batches_with_new_judgments(
    build: Builder, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from annotate.quality import tasks

    made = _pairwise_batch(build)
    quiet = build.batch()
    sent: list[Any] = []
    monkeypatch.setattr(tasks.recompute_batch_quality, "delay", lambda pk: sent.append(pk))
    monkeypatch.setattr(tasks.recompute_track_quality, "delay", lambda track: sent.append(track))
    assert quality_due().batches == [made["batch"].pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert recompute_due_quality() == 1
    assert sent == [made["batch"].pk, "helpfulness"]
    quality_recompute_batch(batch_id=made["batch"].pk)
    assert quality_due().batches == []
    build.pairwise(build.item(made["batch"]), made["alice"], 0)
    assert quality_due().batches == [made["batch"].pk]
    assert quiet.pk not in quality_due().batches
    schedule = settings.CELERY_BEAT_SCHEDULE["recompute-quality"]
    assert schedule["task"] == tasks.recompute_due_quality.name


def test_an_empty_batch_has_an_empty_report(build: Builder) -> None:
    batch = build.batch()
    report = quality_recompute_batch(batch_id=batch.pk)
    assert report.n_judgments == 0 and report.agreement_rate is None and report.leaderboard["models"] == {}
