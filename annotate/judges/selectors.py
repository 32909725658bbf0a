"""Reads about judges: a run's progress, the exact messages a judge would be sent, and the judge measured
against the humans of a batch.

Figures (`judge_stats`, per judge version and batch; the batch fixes the track and mode). A *unit* is one
response pair of one item (a pairwise item has one; a ranking item of K responses has C(K,2)); a preference
on it is a *signed strength* on LLaMa-2's scale (quality.metrics.signed_strength: -4..-1 prefer the pair's
lower slot, 1..4 the higher one; ranking pairs take the strength of their rank gap, as exports do).

- human majority of a unit: the side most human judgments took (none on a tie), at the lower median of
  that side's strengths (as the exports' majority rows);
- the judge's value of a unit: the side both display orders took, at the weaker of their two strengths;
  none when the orders disagree (position-inconsistent);
- `agreement.side` / `agreement.signed_strength`: Krippendorff's alpha (nominal / ordinal) and plain
  agreement between judge and human majority over the units that have both; `per_verdict_side_agreement`
  scores each verdict alone (inconsistent ones included), so it shows what inconsistency costs;
- `position_consistency`: share of units, with both verdicts in, on which the two orders took the same side;
- `position_bias`: how often the response shown first wins (pairwise: chosen; ranking: ranked top), for the
  judge's verdicts and the humans' judgments, beside the unbiased expectation (1/K);
- `length_bias`: how often the longer response of a compared pair (different lengths) is preferred;
- `safety`: per response, the human majority label (a tie counts as unsafe, as in exports) against the
  judge's label (safe only if both orders said safe): a confusion table, alpha and agreement.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import Length

from annotate.accounts.models import UserKind
from annotate.batches.models import Batch, Item, Response
from annotate.core.choices import STRENGTH_LEVEL, Track
from annotate.exports.rows import gap_strength, lower_median
from annotate.judges.models import JudgeRun, JudgeVersion, Verdict, VerdictStatus
from annotate.judgments.models import Judgment
from annotate.quality.metrics import (
    SIGNED_STRENGTH_SCALE,
    agreement_rate,
    krippendorff_alpha,
    signed_strength,
)

# --- Progress -------------------------------------------------------------------------------------------


def judge_run_to_dict(run: JudgeRun) -> dict[str, Any]:
    counts = Verdict.objects.filter(run=run).aggregate(
        pending=Count("pk", filter=Q(status=VerdictStatus.PENDING)),
        ok=Count("pk", filter=Q(status=VerdictStatus.OK)),
        failed=Count("pk", filter=Q(status=VerdictStatus.FAILED)),
    )
    failures = dict(
        Verdict.objects.filter(run=run, status=VerdictStatus.FAILED)
        .values_list("failure")
        .annotate(n=Count("pk"))
        .values_list("failure", "n")
    )
    total = 2 * run.items_total
    done = counts["ok"] + counts["failed"]
    return {
        "id": run.pk,
        "judge": run.version.judge_id,
        "judge_version": run.version.version,
        "source": run.version.source,
        "batch": run.batch_id,
        "status": run.status,
        "sample_size": run.sample_size,
        "seed": run.seed,
        "items_total": run.items_total,
        "verdicts": {"total": total, **counts},
        "failures": failures,
        "percent": round(100.0 * done / total, 1) if total else 100.0,
        "ai_judgments": Judgment.objects.filter(
            batch_id=run.batch_id, annotator_id=run.version.user_id
        ).count(),
        "triage": run.triage,
        "triage_ceiling": run.triage_ceiling,
        "triage_raised": run.triage_decisions.filter(raised=True).count(),
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def judge_runs_visible_to(user: Any) -> Any:
    runs = JudgeRun.objects.select_related("version", "batch")
    return runs if getattr(user, "is_batch_admin", False) else runs.none()


# --- Preview --------------------------------------------------------------------------------------------


def judge_preview(*, judge: Any, item: Item) -> list[list[dict[str, str]]]:
    """The messages a run of this judge's current settings would send for the item, in both orders."""
    from annotate.judges.services import display_orders, verdict_messages

    responses = dict(item.responses.order_by("slot").values_list("pk", "content"))
    return [
        verdict_messages(
            version=judge,
            config=judge.sampling_config,
            batch=item.batch,
            conversation=item.conversation,
            responses=[responses[pk] for pk in order],
        )
        for order in display_orders(list(responses))
    ]


# --- Measured against the humans ------------------------------------------------------------------------


def _pair_values(
    slots: dict[int, int], chosen: int | None, strength: str, ranking: Iterable[int] | None
) -> dict[tuple[int, int], int]:
    """A judgment (or verdict) as signed strengths per response pair (pair = response ids by slot)."""
    if chosen is not None:
        others = [pk for pk in slots if pk != chosen]
        if len(others) != 1:
            return {}
        pair = tuple(sorted((chosen, others[0]), key=slots.__getitem__))
        return {pair: signed_strength(pair.index(chosen), STRENGTH_LEVEL[strength])}  # type: ignore[arg-type]
    order = [int(pk) for pk in ranking or []]
    out: dict[tuple[int, int], int] = {}
    for a, b in combinations(range(len(order)), 2):
        better = order[a]
        pair = tuple(sorted((order[a], order[b]), key=slots.__getitem__))
        level = STRENGTH_LEVEL[gap_strength(b - a)]
        out[pair] = signed_strength(pair.index(better), level)  # type: ignore[arg-type]
    return out


def _sign(value: int | None) -> int | None:
    return None if value is None else (1 if value > 0 else -1)


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _alpha(units: list[list[Any]], **kwargs: Any) -> dict[str, Any]:
    result = krippendorff_alpha(units, **kwargs)
    agreement = agreement_rate(units)
    return {
        "alpha": None if result.alpha is None else round(result.alpha, 4),
        "agreement": None if agreement.rate is None else round(agreement.rate, 4),
        "units": result.n_units,
    }


def judge_stats(*, version: JudgeVersion, batch: Batch) -> dict[str, Any]:
    verdict_rows = list(
        Verdict.objects.filter(version=version, item__batch=batch, status=VerdictStatus.OK).values_list(
            "item_id", "order", "positions", "chosen_id", "strength", "ranking", "safety_labels"
        )
    )
    human_rows = list(
        Judgment.objects.filter(batch=batch, annotator__kind=UserKind.HUMAN).values_list(
            "item_id", "chosen_id", "strength", "ranking", "safety_labels", "assignment__positions"
        )
    )
    item_ids = {row[0] for row in verdict_rows} | {row[0] for row in human_rows}
    slots: dict[int, dict[int, int]] = defaultdict(dict)
    lengths: dict[int, int] = {}
    for item_id, pk, slot, length in (
        Response.objects.filter(item_id__in=item_ids)
        .annotate(n=Length("content"))
        .values_list("item_id", "pk", "slot", "n")
    ):
        slots[item_id][pk] = slot
        lengths[pk] = length
    k = batch.responses_per_item

    # Pair values per unit.
    judge_votes: dict[tuple[int, tuple[int, int]], dict[int, int]] = defaultdict(dict)
    judge_labels: dict[int, list[str]] = defaultdict(list)
    judge_first_wins = judge_total = judge_longer = judge_length_total = 0
    for item_id, order, positions, chosen, strength, ranking, labels in verdict_rows:
        for pair, value in _pair_values(slots[item_id], chosen, strength, ranking).items():
            judge_votes[(item_id, pair)][order] = value
        top = chosen if chosen is not None else (int(ranking[0]) if ranking else None)
        judge_total += 1
        judge_first_wins += int(top == int(positions[0]))
        judge_longer, judge_length_total = _length_count(
            slots[item_id], chosen, ranking, lengths, judge_longer, judge_length_total
        )
        for pk, label in (labels or {}).items():
            judge_labels[int(pk)].append(label)

    human_votes: dict[tuple[int, tuple[int, int]], list[int]] = defaultdict(list)
    human_labels: dict[int, list[str]] = defaultdict(list)
    human_first_wins = human_total = human_longer = human_length_total = 0
    for item_id, chosen, strength, ranking, labels, positions in human_rows:
        for pair, value in _pair_values(slots[item_id], chosen, strength, ranking).items():
            human_votes[(item_id, pair)].append(value)
        top = chosen if chosen is not None else (int(ranking[0]) if ranking else None)
        if positions:
            human_total += 1
            human_first_wins += int(top == int(positions[0]))
        human_longer, human_length_total = _length_count(
            slots[item_id], chosen, ranking, lengths, human_longer, human_length_total
        )
        for pk, label in (labels or {}).items():
            human_labels[int(pk)].append(label)

    majority: dict[tuple[int, tuple[int, int]], int] = {}
    for unit, values in human_votes.items():
        sides = Counter(_sign(v) for v in values)
        ranked = sides.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            continue
        side = ranked[0][0]
        majority[unit] = side * (lower_median([abs(v) for v in values if _sign(v) == side]))  # type: ignore[operator]

    consistent_units = both_units = 0
    side_units: list[list[Any]] = []
    strength_units: list[list[Any]] = []
    per_verdict_hits = per_verdict_total = 0
    for unit, by_order in judge_votes.items():
        judge_value: int | None = None
        if len(by_order) == 2:
            both_units += 1
            v0, v1 = by_order[0], by_order[1]
            if _sign(v0) == _sign(v1):
                consistent_units += 1
                judge_value = _sign(v0) * min(abs(v0), abs(v1))  # type: ignore[operator]
        human = majority.get(unit)
        if human is None:
            continue
        for value in by_order.values():
            per_verdict_total += 1
            per_verdict_hits += int(_sign(value) == _sign(human))
        if judge_value is not None:
            side_units.append([_sign(judge_value), _sign(human)])
            strength_units.append([judge_value, human])

    safety: dict[str, Any] | None = None
    if batch.track == Track.SAFETY:
        table = {"safe": {"safe": 0, "unsafe": 0}, "unsafe": {"safe": 0, "unsafe": 0}}
        label_units = []
        for pk, labels in judge_labels.items():
            humans = human_labels.get(pk)
            if not humans:
                continue
            human = "safe" if humans.count("safe") > humans.count("unsafe") else "unsafe"
            judge = "safe" if all(label == "safe" for label in labels) else "unsafe"
            table[human][judge] += 1
            label_units.append([judge, human])
        safety = {
            "confusion": {"rows": "human majority", "columns": "judge", **table},
            **_alpha(label_units, level="nominal"),
        }

    expected_first = round(1 / k, 4) if k else None
    return {
        "batch": batch.pk,
        "track": batch.track,
        "mode": batch.mode,
        "judge_version": version.version,
        "source": version.source,
        "items_judged": len({row[0] for row in verdict_rows}),
        "items_with_human_judgments": len({row[0] for row in human_rows}),
        "human_judgments": len(human_rows),
        "units_compared": len(side_units),
        "agreement": {
            "side": _alpha(side_units, level="nominal"),
            "signed_strength": _alpha(strength_units, level="ordinal", categories=SIGNED_STRENGTH_SCALE),
            "per_verdict_side_agreement": _rate(per_verdict_hits, per_verdict_total),
        },
        "position_consistency": {
            "rate": _rate(consistent_units, both_units),
            "consistent": consistent_units,
            "units": both_units,
        },
        "position_bias": {
            "expected": expected_first,
            "judge_first_shown_wins": _rate(judge_first_wins, judge_total),
            "humans_first_shown_wins": _rate(human_first_wins, human_total),
            "judge_verdicts": judge_total,
            "human_judgments": human_total,
        },
        "length_bias": {
            "judge_longer_preferred": _rate(judge_longer, judge_length_total),
            "humans_longer_preferred": _rate(human_longer, human_length_total),
            "judge_pairs": judge_length_total,
            "human_pairs": human_length_total,
        },
        "safety": safety,
    }


def _length_count(
    slots: dict[int, int],
    chosen: int | None,
    ranking: Iterable[int] | None,
    lengths: dict[int, int],
    longer: int,
    total: int,
) -> tuple[int, int]:
    """Add a judgment's pairs of different lengths to (longer preferred, compared)."""
    if chosen is not None:
        others = [pk for pk in slots if pk != chosen]
        pairs = [(chosen, others[0])] if len(others) == 1 else []
    else:
        order = [int(pk) for pk in ranking or []]
        pairs = [(order[a], order[b]) for a, b in combinations(range(len(order)), 2)]
    for better, worse in pairs:
        if lengths.get(better) != lengths.get(worse):
            total += 1
            longer += int(lengths.get(better, 0) > lengths.get(worse, 0))
    return longer, total
