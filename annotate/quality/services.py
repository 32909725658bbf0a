"""Quality writes: recomputing and storing the reports, marking gold items, and adaptive overlap.

Reports are recomputed from the judgments as they are (never incremented), so running a recomputation twice,
or two at once, is harmless: the last one stored wins and each is a consistent snapshot. The reading is
done column-wise with SQL into numpy arrays (never model instances); the figures come from metrics.py.

Adaptive overlap (`quality_judgment_recorded`) runs inside the judgment's submit transaction, under the item
row lock: that lock is what keeps `wanted`/`taken` and the open-items partial index exact.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, OuterRef, Subquery
from django.utils import timezone

from annotate.accounts.models import User, UserKind
from annotate.batches.models import AdaptiveRule, Batch, BatchStatus, Item, Response
from annotate.core.choices import STRENGTH_LEVEL, Mode, SafetyBin, Strength, Track
from annotate.core.errors import DomainError
from annotate.endpoints.models import SamplingConfig
from annotate.judgments.models import Judgment
from annotate.quality import metrics
from annotate.quality.models import AnnotatorStats, QualityReport, ReportScope

logger = logging.getLogger(__name__)

STRENGTHS: tuple[str, ...] = tuple(Strength.values)  # code = index
SAFETY_BINS: tuple[str, ...] = tuple(SafetyBin.values)
LEADERBOARD_ROUNDS = 200
LEADERBOARD_SEED = 0
# "Negligibly better / unsure" says the annotator could not tell: the leaderboard counts it as a tie.
TIE_STRENGTH = Strength.NEGLIGIBLY_BETTER_OR_UNSURE
_CHUNK = 50_000

T_JUDGMENT = Judgment._meta.db_table
T_ITEM = Item._meta.db_table
T_RESPONSE = Response._meta.db_table
T_USER = User._meta.db_table


# --- Adaptive overlap ------------------------------------------------------------------------------


def _disagree(answers: list[Any], rule: str) -> bool:
    counts: dict[Any, int] = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    if rule == AdaptiveRule.UNTIL_UNANIMOUS:
        return len(counts) > 1
    return max(counts.values()) * 2 <= len(answers)  # no strict majority


def quality_judgment_recorded(*, batch: Batch, item_id: int) -> bool:
    """The hook for judgment submission: call it inside the submit transaction, after the judgment row is
    written (the caller holds the assignment's lock; this takes the item's, in the usual order).

    Under adaptive overlap, once every wanted judgment of a (non-gold) item is in and they disagree by the
    batch's rule, the item wants one more, up to the batch's ceiling; the raised `wanted` reopens it for
    claims. Returns whether it did. Costs nothing when the batch has adaptive overlap off.
    """
    if not batch.adaptive_overlap:
        return False
    item = Item.objects.select_for_update(of=("self",)).filter(pk=item_id).values("wanted", "is_gold").first()
    if item is None or item["is_gold"] or item["wanted"] >= batch.overlap_ceiling:
        return False
    # AI verdicts never count.
    human = Judgment.objects.filter(item_id=item_id, annotator__kind=UserKind.HUMAN)
    rows = list(human.values_list("chosen_id", "ranking"))
    if len(rows) < item["wanted"] or len(rows) < 2:
        return False  # the first judgments are not all in yet
    # Pairwise: the chosen response; ranking: the response ranked first. Ids are comparable within an item.
    answers = [chosen if chosen is not None else (ranking or [None])[0] for chosen, ranking in rows]
    if not _disagree(answers, batch.adaptive_rule):
        return False
    Item.objects.filter(pk=item_id).update(wanted=F("wanted") + 1)
    return True


# --- Gold items -------------------------------------------------------------------------------------


def gold_expected_parse(*, batch: Batch, raw: Any) -> dict[str, Any]:
    """Check an expected answer against the batch and return it as stored: pairwise `{"slot": 0|1,
    "min_strength": <strength> | null}`, ranking `{"ranking": [slots, best first]}`."""
    k = batch.responses_per_item
    if not isinstance(raw, Mapping):
        raise DomainError("The expected answer must be an object.", field="gold_expected")
    if batch.mode == Mode.PAIRWISE:
        unknown = set(raw) - {"slot", "min_strength"}
        if unknown:
            raise DomainError(f"Unknown key {sorted(unknown)[0]!r}.", field="gold_expected")
        slot = raw.get("slot")
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < k:
            raise DomainError("Say which response is better: slot 0 or 1.", field="gold_slot")
        strength = raw.get("min_strength")
        if strength in ("", None):
            strength = None
        elif strength not in STRENGTHS:
            raise DomainError(
                f"min_strength must be one of {', '.join(STRENGTHS)}.", field="gold_min_strength"
            )
        return {"slot": slot, "min_strength": strength}
    unknown = set(raw) - {"ranking"}
    if unknown:
        raise DomainError(f"Unknown key {sorted(unknown)[0]!r}.", field="gold_expected")
    ranking = raw.get("ranking")
    if (
        not isinstance(ranking, list)
        or any(isinstance(s, bool) or not isinstance(s, int) for s in ranking)
        or sorted(ranking) != list(range(k))
    ):
        raise DomainError(
            f"The expected ranking must list each slot 0..{k - 1} once, best first.", field="gold_ranking"
        )
    return {"ranking": list(ranking)}


@transaction.atomic
def item_set_gold(*, item_id: int, expected: Any | None) -> Item:
    """Mark an item gold with its expected answer (validated), or unmark it with `expected=None`."""
    item = Item.objects.select_for_update().select_related("batch").filter(pk=item_id).first()
    if item is None:
        raise DomainError("No such item.", code="not_found", field="item")
    if expected is None:
        item.is_gold, item.gold_expected = False, None
    else:
        item.gold_expected = gold_expected_parse(batch=item.batch, raw=expected)
        item.is_gold = True
    Item.objects.filter(pk=item.pk).update(is_gold=item.is_gold, gold_expected=item.gold_expected)
    return item


def _gold_score(
    expected: Mapping[str, Any], slot: int, strength_code: int, ranking: tuple[int, ...] | None
) -> float:
    """1.0 for a right answer of a gold item and 0.0 for a wrong one; a ranking scores the share of its
    pairs of responses ordered as expected (1.0 when it is exactly the expected ranking)."""
    if "ranking" in expected:
        if ranking is None:
            return 0.0
        k = len(ranking)
        pairs = k * (k - 1) / 2
        return 1.0 - metrics.kendall_tau_distance(tuple(expected["ranking"]), ranking) / pairs
    if slot != expected.get("slot"):
        return 0.0
    minimum = expected.get("min_strength")
    if minimum and strength_code >= 0:
        return 1.0 if STRENGTH_LEVEL[STRENGTHS[strength_code]] >= STRENGTH_LEVEL[minimum] else 0.0
    return 1.0


# --- Reading judgments column-wise ----------------------------------------------------------------


@dataclass
class Columns:
    """The human judgments of a batch or track, one array per column, ordered by item then judgment id."""

    id: np.ndarray
    item: np.ndarray
    annotator: np.ndarray
    mode: np.ndarray  # 0 pairwise, 1 ranking
    slot: np.ndarray  # pairwise: chosen slot; ranking: slot ranked first; -1 unknown
    strength: np.ndarray  # index in STRENGTHS, -1 for none
    position: np.ndarray  # pairwise: 0 = chosen shown on the left; -1 unknown
    time_ms: np.ndarray
    chosen_len: np.ndarray  # -1 unknown
    rejected_len: np.ndarray
    safety_bin: np.ndarray  # index in SAFETY_BINS, -1 for none
    day: np.ndarray  # days since 1970-01-01 (UTC)
    rankings: dict[int, tuple[int, ...]] = field(default_factory=dict)  # row -> slots best first

    def __len__(self) -> int:
        return len(self.id)


# One query for PostgreSQL and the embedded SQLite: plain columns, and the slots of a ranking (stored as
# response ids) are worked out in Python. The one vendor-specific part is the day of a judgment (in UTC, as
# days since 1970-01-01), an integer computed by the database: building 200,000 datetime objects to do it
# in Python doubled the read's CPU time. Django stores SQLite datetimes as UTC text, so date() is the UTC
# day, and both julianday() values are exact halves: their difference is an exact integer.
_DAY_SQL = {
    "postgresql": "((j.created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')",
    "sqlite": "CAST(julianday(date(j.created_at)) - julianday('1970-01-01') AS INTEGER)",
}
_SELECT = f"""
SELECT j.id, j.item_id, j.annotator_id, CASE WHEN j.mode = 'ranking' THEN 1 ELSE 0 END,
       COALESCE(rc.slot, -1), j.strength, COALESCE(j.position_chosen, -1), j.time_spent_ms,
       COALESCE(length(rc.content), -1), COALESCE(length(rr.content), -1), j.safety_bin,
       {{day}}, CASE WHEN j.mode = 'ranking' THEN j.ranking END
FROM {T_JUDGMENT} j
JOIN {T_USER} u ON u.id = j.annotator_id
LEFT JOIN {T_RESPONSE} rc ON rc.id = j.chosen_id
LEFT JOIN {T_RESPONSE} rr ON rr.id = j.rejected_id
WHERE {{where}} AND u.kind = '{UserKind.HUMAN}'
ORDER BY j.item_id, j.id
"""
# The responses of the scope's ranking items (what a ranking's ids are looked up in).
_RANKED_RESPONSES = f"""
SELECT r.id, r.slot, r.model_name, r.sampling_config_id FROM {T_RESPONSE} r
WHERE r.item_id IN (SELECT j.item_id FROM {T_JUDGMENT} j WHERE {{where}} AND j.mode = '{Mode.RANKING}')
"""


def _scope(batch_id: int | None, track: str | None) -> tuple[str, list[Any]]:
    if batch_id is not None:
        return "j.batch_id = %s", [batch_id]
    return "j.track = %s", [track]


@contextmanager
def _analytic_cursor() -> Iterator[Any]:
    """A cursor for the large read queries. On PostgreSQL they run in a transaction with JIT compilation
    off: their cost estimates (joins over every judgment of a batch or track) cross `jit_above_cost`, and
    compiling took 1.4-1.7 s per query for no gain (docs/benchmarks.md). Inside a caller's transaction the
    previous setting is put back afterwards (an error rolls the savepoint back, and the setting with it).
    SQLite has no JIT, and no transaction is opened there (a read transaction would hold off writers)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit')")
        previous = cursor.fetchone()[0]
        cursor.execute("SET LOCAL jit = off")
        yield cursor
        if previous != "off":
            cursor.execute("SELECT set_config('jit', %s, true)", [previous])


def _response_ids(raw: Any) -> list[int]:
    """A stored ranking (JSON text from a raw cursor, or already a list) as response ids, best first."""
    ids = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return [int(i) for i in ids] if isinstance(ids, list) else []


def _codes(values: list[str], domain: tuple[str, ...]) -> np.ndarray:
    index = {v: i for i, v in enumerate(domain)}
    return np.fromiter((index.get(v, -1) for v in values), dtype=np.int8, count=len(values))


def load_columns(*, batch_id: int | None = None, track: str | None = None) -> Columns:
    """Read the human judgments of one batch (or one whole track) into arrays, a chunk at a time."""
    where, params = _scope(batch_id, track)
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in Columns.__dataclass_fields__ if name != "rankings"
    }
    stored: dict[int, list[int]] = {}  # row -> response ids best first
    offset = 0
    with _analytic_cursor() as cursor:
        cursor.execute(_SELECT.format(where=where, day=_DAY_SQL[connection.vendor]), params)
        while True:
            rows = cursor.fetchmany(_CHUNK)
            if not rows:
                break
            cols = list(zip(*rows, strict=True))
            parts["id"].append(np.array(cols[0], dtype=np.int64))
            parts["item"].append(np.array(cols[1], dtype=np.int64))
            parts["annotator"].append(np.array(cols[2], dtype=np.int64))
            mode = np.array(cols[3], dtype=np.int8)
            parts["mode"].append(mode)
            for i in np.flatnonzero(mode == 1):
                ids = _response_ids(cols[12][i])
                if ids:
                    stored[offset + int(i)] = ids
            parts["slot"].append(np.array(cols[4], dtype=np.int16))
            parts["strength"].append(_codes(cols[5], STRENGTHS))
            parts["position"].append(np.array(cols[6], dtype=np.int16))
            parts["time_ms"].append(np.array(cols[7], dtype=np.int64))
            parts["chosen_len"].append(np.array(cols[8], dtype=np.int64))
            parts["rejected_len"].append(np.array(cols[9], dtype=np.int64))
            parts["safety_bin"].append(_codes(cols[10], SAFETY_BINS))
            parts["day"].append(np.array(cols[11], dtype=np.int32))
            offset += len(rows)
            del rows, cols
        slot_of: dict[int, int] = {}
        if stored:
            cursor.execute(_RANKED_RESPONSES.format(where=where), params)
            slot_of = {rid: slot for rid, slot, _, _ in cursor.fetchall()}
    arrays = {
        name: (np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64))
        for name, chunks in parts.items()
    }
    rankings: dict[int, tuple[int, ...]] = {}
    for row, ids in stored.items():
        # Ids that name no response of the item are left out (as a join would).
        ranked = tuple(slot_of[rid] for rid in ids if rid in slot_of)
        if ranked:
            rankings[row] = ranked
            arrays["slot"][row] = ranked[0]
    return Columns(**arrays, rankings=rankings)


# --- Computing the figures --------------------------------------------------------------------------


@dataclass
class AgreementFigures:
    agreement_rate: float | None = None
    agreement_items: int = 0
    alpha_nominal: float | None = None
    alpha_nominal_items: int = 0
    alpha_ordinal: float | None = None
    alpha_ordinal_items: int = 0
    fleiss_kappa: float | None = None
    fleiss_kappa_items: int = 0
    fleiss_kappa_raters: int = 0
    alpha_ranking: float | None = None
    alpha_ranking_items: int = 0


def _units(item: np.ndarray) -> np.ndarray:
    """Unit index 0..U-1 of each row (rows are sorted by item)."""
    if len(item) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(item[1:] != item[:-1])]).astype(np.int64)


def _fleiss(unit: np.ndarray, codes: np.ndarray, n_categories: int) -> metrics.KappaResult:
    """Fleiss' kappa over the most common number of judgments per item; items with more (adaptive
    overlap) count with their first ones, items with fewer are left out."""
    if len(unit) == 0:
        return metrics.KappaResult(None, 0, 0)
    sizes = np.bincount(unit)
    eligible = sizes[sizes >= 2]
    if len(eligible) == 0:
        return metrics.KappaResult(None, 0, 0)
    frequency = np.bincount(eligible)
    raters = int(np.flatnonzero(frequency == frequency.max()).max())
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank_in_unit = np.arange(len(unit)) - starts[unit]
    keep = (rank_in_unit < raters) & (sizes[unit] >= raters)
    if not keep.any():
        return metrics.KappaResult(None, 0, raters)
    kept_units = _units(unit[keep])
    counts = metrics.value_counts(kept_units, codes[keep].astype(np.int64), n_categories)
    return metrics.kappa_from_counts(counts)


def agreement_figures(columns: Columns) -> AgreementFigures:
    figures = AgreementFigures()
    # Pairwise and ranking judgments never share an item; the categorical figures use pairwise judgments
    # when there are any (the chosen side), else ranking ones (the response ranked first).
    pairwise = (columns.mode == 0) & (columns.slot >= 0)
    ranking = (columns.mode == 1) & (columns.slot >= 0)
    categorical = pairwise if pairwise.any() else ranking
    if categorical.any():
        unit = _units(columns.item[categorical])
        codes = columns.slot[categorical].astype(np.int64)
        n_categories = int(codes.max()) + 1
        counts = metrics.value_counts(unit, codes, n_categories)
        rate = metrics.agreement_from_counts(counts)
        figures.agreement_rate, figures.agreement_items = rate.rate, rate.n_units
        nominal = metrics.alpha_from_counts(counts, "nominal")
        figures.alpha_nominal, figures.alpha_nominal_items = nominal.alpha, nominal.n_units
        kappa = _fleiss(unit, codes, n_categories)
        figures.fleiss_kappa, figures.fleiss_kappa_items = kappa.kappa, kappa.n_units
        figures.fleiss_kappa_raters = kappa.raters
    signed = pairwise & (columns.strength >= 0)
    if signed.any():
        levels = np.array([STRENGTH_LEVEL[s] for s in STRENGTHS], dtype=np.int64)[columns.strength[signed]]
        # Index on SIGNED_STRENGTH_SCALE (-4..-1, 1..4): slot 0 -> 3 - level, slot 1 -> 4 + level.
        scale_index = np.where(columns.slot[signed] == 0, 3 - levels, 4 + levels)
        counts = metrics.value_counts(
            _units(columns.item[signed]), scale_index, len(metrics.SIGNED_STRENGTH_SCALE)
        )
        ordinal = metrics.alpha_from_counts(counts, "ordinal")
        figures.alpha_ordinal, figures.alpha_ordinal_items = ordinal.alpha, ordinal.n_units
    if columns.rankings:
        rows = np.array(sorted(columns.rankings), dtype=np.int64)
        ranked = [columns.rankings[int(r)] for r in rows]
        if len({len(r) for r in ranked}) == 1:
            bits = metrics.kendall_tau_distance.features(ranked)
            result = metrics.alpha_hamming(_units(columns.item[rows]), bits)
            figures.alpha_ranking, figures.alpha_ranking_items = result.alpha, result.n_units
    return figures


def _distribution(codes: np.ndarray, domain: tuple[str, ...]) -> dict[str, int]:
    valid = codes[codes >= 0].astype(np.int64)
    counts = np.bincount(valid, minlength=len(domain))
    return {name: int(counts[i]) for i, name in enumerate(domain)}


def _per_day(day: np.ndarray) -> list[dict[str, Any]]:
    if len(day) == 0:
        return []
    first = int(day.min())
    counts = np.bincount(day - first)
    cumulative = np.cumsum(counts)
    epoch = date(1970, 1, 1)
    return [
        {"day": (epoch + timedelta(days=first + i)).isoformat(), "judgments": int(n), "cumulative": int(c)}
        for i, (n, c) in enumerate(zip(counts, cumulative, strict=True))
    ]


@dataclass
class AnnotatorRow:
    annotator_id: int
    judgments: int
    median_time_ms: int | None
    agreement: float | None
    agreement_n: int
    gold_accuracy: float | None
    gold_n: int
    left_share: float | None
    left_n: int
    longer_share: float | None
    longer_n: int
    strength_distribution: dict[str, int]
    flagged: bool = False
    flag_reasons: list[str] = field(default_factory=list)


def _group_mean(
    group: np.ndarray, values: np.ndarray, mask: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    n = np.bincount(group[mask], minlength=n_groups)
    total = np.bincount(group[mask], weights=values[mask].astype(np.float64), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan), n


def annotator_rows(
    columns: Columns, gold: Mapping[int, Mapping[str, Any]], batch: Batch | None
) -> list[AnnotatorRow]:
    if len(columns) == 0:
        return []
    people, group = np.unique(columns.annotator, return_inverse=True)
    g = len(people)
    judgments = np.bincount(group, minlength=g)
    # Median time per annotator: sort by (annotator, time) and take the middle of each group.
    order = np.lexsort((columns.time_ms, group))
    sorted_time = columns.time_ms[order].astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(judgments)[:-1]])
    median = (sorted_time[starts + (judgments - 1) // 2] + sorted_time[starts + judgments // 2]) / 2
    # Agreement with the majority of the others, on the categorical answer of agreement_figures.
    answered = columns.slot >= 0
    majority = np.full(len(columns), np.nan)
    if answered.any():
        codes = columns.slot[answered].astype(np.int64)
        majority[answered] = metrics.agreement_with_majority_of_others(
            _units(columns.item[answered]), codes, int(codes.max()) + 1
        )
    defined = ~np.isnan(majority)
    agreement, agreement_n = _group_mean(group, np.nan_to_num(majority), defined, g)
    # Gold accuracy.
    gold_score = np.full(len(columns), np.nan)
    if gold:
        for row in np.flatnonzero(np.isin(columns.item, np.fromiter(gold, dtype=np.int64))):
            gold_score[row] = _gold_score(
                gold[int(columns.item[row])],
                int(columns.slot[row]),
                int(columns.strength[row]),
                columns.rankings.get(int(row)),
            )
    is_gold = ~np.isnan(gold_score)
    gold_accuracy, gold_n = _group_mean(group, np.nan_to_num(gold_score), is_gold, g)
    # Position and length bias (pairwise).
    placed = (columns.mode == 0) & (columns.position >= 0)
    left, left_n = _group_mean(group, columns.position == 0, placed, g)
    unequal = (columns.mode == 0) & (columns.chosen_len >= 0) & (columns.rejected_len >= 0)
    unequal &= columns.chosen_len != columns.rejected_len
    longer, longer_n = _group_mean(group, columns.chosen_len > columns.rejected_len, unequal, g)
    # Strength distribution.
    has_strength = columns.strength >= 0
    size = len(STRENGTHS)
    flat = group[has_strength] * size + columns.strength[has_strength].astype(np.int64)
    strength_counts = np.bincount(flat, minlength=g * size).reshape(g, size)

    def opt(values: np.ndarray, i: int) -> float | None:
        return None if np.isnan(values[i]) else float(values[i])

    rows = []
    for i, person in enumerate(people):
        row = AnnotatorRow(
            annotator_id=int(person),
            judgments=int(judgments[i]),
            median_time_ms=round(float(median[i])),
            agreement=opt(agreement, i),
            agreement_n=int(agreement_n[i]),
            gold_accuracy=opt(gold_accuracy, i),
            gold_n=int(gold_n[i]),
            left_share=opt(left, i),
            left_n=int(left_n[i]),
            longer_share=opt(longer, i),
            longer_n=int(longer_n[i]),
            strength_distribution={
                s: int(strength_counts[i, k]) for k, s in enumerate(STRENGTHS) if strength_counts[i, k]
            },
        )
        if batch is not None:
            _flag(row, batch)
        rows.append(row)
    return rows


def _flag(row: AnnotatorRow, batch: Batch) -> None:
    """Flag an annotator under either batch threshold, once there is enough evidence (docs/quality.md)."""
    evidence = batch.flag_min_evidence
    if row.agreement is not None and row.agreement_n >= evidence and row.agreement < batch.flag_min_agreement:
        row.flag_reasons.append(
            f"agreement with the majority {row.agreement:.2f} < {batch.flag_min_agreement:.2f} "
            f"over {row.agreement_n} judgments"
        )
    if (
        row.gold_accuracy is not None
        and row.gold_n >= evidence
        and row.gold_accuracy < batch.flag_min_gold_accuracy
    ):
        row.flag_reasons.append(
            f"gold accuracy {row.gold_accuracy:.2f} < {batch.flag_min_gold_accuracy:.2f} "
            f"over {row.gold_n} gold judgments"
        )
    row.flagged = bool(row.flag_reasons)


# --- The leaderboard --------------------------------------------------------------------------------

# Pairwise comparisons counted per (winner, loser) model and config in SQL; rankings are read as stored and
# expanded into their pairs in Python (one query for every vendor).
_JUDGMENTS_COUNTED = f"""
FROM {T_JUDGMENT} j
JOIN {T_USER} u ON u.id = j.annotator_id
JOIN {T_ITEM} i ON i.id = j.item_id
"""
_COUNTED = f"{{where}} AND u.kind = '{UserKind.HUMAN}' AND NOT i.is_gold"
_LEADERBOARD_PAIRWISE_SQL = f"""
SELECT rw.model_name, rl.model_name, rw.sampling_config_id, rl.sampling_config_id, j.strength = %s, count(*)
{_JUDGMENTS_COUNTED}
JOIN {T_RESPONSE} rw ON rw.id = j.chosen_id
JOIN {T_RESPONSE} rl ON rl.id = j.rejected_id
WHERE {_COUNTED} AND j.mode = '{Mode.PAIRWISE}'
GROUP BY 1, 2, 3, 4, 5
"""
_LEADERBOARD_RANKINGS_SQL = f"""
SELECT j.ranking
{_JUDGMENTS_COUNTED}
WHERE {_COUNTED} AND j.mode = '{Mode.RANKING}'
"""


def _leaderboard_outcomes(
    batch_id: int | None, track: str | None
) -> list[tuple[str | None, str | None, int | None, int | None, bool, int]]:
    """(winner model, loser model, winner config, loser config, tie, count) over the scope's comparisons:
    pairwise judgments as they are, rankings expanded into every pair (the higher ranked one wins)."""
    where, params = _scope(batch_id, track)
    with _analytic_cursor() as cursor:
        cursor.execute(_LEADERBOARD_PAIRWISE_SQL.format(where=where), [TIE_STRENGTH.value, *params])
        outcomes = [(wm, lm, wc, lc, bool(tie), n) for wm, lm, wc, lc, tie, n in cursor.fetchall()]
        cursor.execute(_LEADERBOARD_RANKINGS_SQL.format(where=where), params)
        rankings = [_response_ids(raw) for (raw,) in cursor.fetchall()]
        rankings = [ids for ids in rankings if len(ids) > 1]
        if not rankings:
            return outcomes
        cursor.execute(_RANKED_RESPONSES.format(where=where), params)
        info = {rid: (model, config) for rid, _, model, config in cursor.fetchall()}
    counts: dict[tuple[Any, ...], int] = {}
    for ids in rankings:
        known = [info[rid] for rid in ids if rid in info]
        for a, (winner_model, winner_config) in enumerate(known):
            for loser_model, loser_config in known[a + 1 :]:
                key = (winner_model, loser_model, winner_config, loser_config, False)
                counts[key] = counts.get(key, 0) + 1
    return outcomes + [(*key, n) for key, n in counts.items()]


def _fit_leaderboard(
    outcomes: list[tuple[Any, Any, bool, int]], labels: Mapping[Any, str] | None = None
) -> dict[str, Any]:
    """Bradley-Terry over aggregated outcomes (winner key, loser key, tie, count)."""
    keys = sorted({k for w, lo, _, _ in outcomes for k in (w, lo)}, key=str)
    if len(keys) < 2:
        return {}
    index = {k: i for i, k in enumerate(keys)}
    m = len(keys)
    wins = np.zeros((m, m))
    ties = np.zeros((m, m))
    for winner, loser, tie, count in outcomes:
        i, j = index[winner], index[loser]
        if i == j:
            continue  # two responses of one model in one comparison say nothing about the model
        if tie:
            ties[i, j] += count
            ties[j, i] += count
        else:
            wins[i, j] += count
    names = [labels[k] if labels else str(k) for k in keys]
    result = metrics.bradley_terry(wins, ties, names=names, rounds=LEADERBOARD_ROUNDS, seed=LEADERBOARD_SEED)
    return leaderboard_to_dict(result)


def leaderboard_to_dict(result: metrics.BradleyTerryResult) -> dict[str, Any]:
    """A fit as stored JSON: rows best first (score, interval, Elo-like rating), win rates, pair counts."""
    order = result.order()
    ratings = result.ratings()
    to_rating = 400 / np.log(10)

    def num(x: float) -> float | None:
        return None if not np.isfinite(x) else round(float(x), 6)

    rows = [
        {
            "name": result.names[i],
            "score": num(result.scores[i]),
            "lower": num(result.lower[i]),
            "upper": num(result.upper[i]),
            "rating": num(ratings[i]),
            "rating_lower": num(1000 + to_rating * result.lower[i]),
            "rating_upper": num(1000 + to_rating * result.upper[i]),
            "comparisons": int(result.comparisons[i].sum()),
            "wins": float(result.wins[i].sum() + 0.5 * result.ties[i].sum()),
        }
        for i in order
    ]
    win_rate = result.win_rate
    return {
        "rows": rows,
        "names": [result.names[i] for i in order],
        "win_rate": [[num(win_rate[i, j]) for j in order] for i in order],
        "comparisons": [[int(result.comparisons[i, j]) for j in order] for i in order],
        "rounds": result.rounds,
        "confidence": result.confidence,
        "regularized": result.regularized,
        "total_comparisons": int(result.comparisons.sum() / 2),
    }


def leaderboards(*, batch_id: int | None = None, track: str | None = None) -> dict[str, Any]:
    """The model leaderboard and the sampling-config leaderboard of a batch or a track."""
    rows = _leaderboard_outcomes(batch_id, track)
    by_model: dict[tuple[str, str, bool], int] = {}
    by_config: dict[tuple[int, int, bool], int] = {}
    for winner_model, loser_model, winner_config, loser_config, tie, count in rows:
        key = (winner_model or "(unnamed)", loser_model or "(unnamed)", bool(tie))
        by_model[key] = by_model.get(key, 0) + count
        if winner_config is not None and loser_config is not None:
            ckey = (winner_config, loser_config, bool(tie))
            by_config[ckey] = by_config.get(ckey, 0) + count
    config_labels = {
        pk: f"{label} (t={temperature:g})"
        for pk, label, temperature in SamplingConfig.objects.filter(
            pk__in={k for w, lo, _ in by_config for k in (w, lo)}
        ).values_list("pk", "label", "temperature")
    }
    return {
        "models": _fit_leaderboard([(w, lo, t, n) for (w, lo, t), n in by_model.items()]),
        "configs": _fit_leaderboard([(w, lo, t, n) for (w, lo, t), n in by_config.items()], config_labels),
    }


# --- Recomputing and storing -----------------------------------------------------------------------


@dataclass
class Computed:
    n_judgments: int
    n_items: int
    n_annotators: int
    last_judgment_id: int
    agreement: AgreementFigures
    strength_distribution: dict[str, int]
    safety_bins: dict[str, int]
    judgments_per_day: list[dict[str, Any]]
    leaderboard: dict[str, Any]
    annotators: list[AnnotatorRow]


def compute(
    *, batch: Batch | None = None, track: str | None = None, with_leaderboard: bool = True
) -> Computed:
    """Every figure of a batch (with per-annotator rows and flags) or of a track."""
    batch_id = batch.pk if batch is not None else None
    # Read first: judgments stored while we compute are newer than this, so the beat job comes back for them.
    scope = (
        Judgment.objects.filter(batch_id=batch_id)
        if batch is not None
        else Judgment.objects.filter(track=track)
    )
    last_judgment_id = scope.aggregate(last=Max("id"))["last"] or 0
    columns = load_columns(batch_id=batch_id, track=track)
    gold: dict[int, dict[str, Any]] = {}
    if batch is not None:
        gold = dict(Item.objects.filter(batch=batch, is_gold=True).values_list("pk", "gold_expected"))
    result = Computed(
        n_judgments=len(columns),
        n_items=len(np.unique(columns.item)),
        n_annotators=len(np.unique(columns.annotator)),
        last_judgment_id=last_judgment_id,
        agreement=agreement_figures(columns),
        strength_distribution=_distribution(columns.strength, STRENGTHS),
        safety_bins=_distribution(columns.safety_bin, SAFETY_BINS),
        judgments_per_day=_per_day(columns.day),
        leaderboard={},
        annotators=annotator_rows(columns, gold, batch) if batch is not None else [],
    )
    del columns
    if with_leaderboard:
        result.leaderboard = leaderboards(batch_id=batch_id, track=track)
    return result


def _store(
    *, scope: str, batch: Batch | None, track: str, computed: Computed, duration_ms: int
) -> QualityReport:
    values = {
        "track": track,
        "computed_at": timezone.now(),
        "duration_ms": duration_ms,
        "last_judgment_id": computed.last_judgment_id,
        "n_judgments": computed.n_judgments,
        "n_items": computed.n_items,
        "n_annotators": computed.n_annotators,
        **computed.agreement.__dict__,
        "strength_distribution": computed.strength_distribution,
        "safety_bins": computed.safety_bins,
        "judgments_per_day": computed.judgments_per_day,
        "leaderboard": computed.leaderboard,
    }
    lookup = (
        {"scope": scope, "batch": batch} if scope == ReportScope.BATCH else {"scope": scope, "track": track}
    )
    for _attempt in range(2):
        try:
            with transaction.atomic():
                report = QualityReport.objects.select_for_update().filter(**lookup).first()
                if report is None:
                    report = QualityReport.objects.create(**{**lookup, **values})
                else:
                    for name, value in values.items():
                        setattr(report, name, value)
                    report.save()
                    report.annotators.all().delete()
                if batch is not None:
                    AnnotatorStats.objects.bulk_create(
                        AnnotatorStats(
                            report=report,
                            batch=batch,
                            annotator_id=row.annotator_id,
                            judgments=row.judgments,
                            median_time_ms=row.median_time_ms,
                            agreement=row.agreement,
                            agreement_n=row.agreement_n,
                            gold_accuracy=row.gold_accuracy,
                            gold_n=row.gold_n,
                            left_share=row.left_share,
                            left_n=row.left_n,
                            longer_share=row.longer_share,
                            longer_n=row.longer_n,
                            strength_distribution=row.strength_distribution,
                            flagged=row.flagged,
                            flag_reasons=row.flag_reasons,
                        )
                        for row in computed.annotators
                    )
                return report
        except IntegrityError:
            # A concurrent recomputation created the report first: update that one instead.
            continue
    raise DomainError("The quality report is being recomputed concurrently; try again.", code="conflict")


def quality_recompute_batch(*, batch_id: int) -> QualityReport:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise DomainError("No such batch.", code="not_found", field="batch")
    started = time.monotonic()
    computed = compute(batch=batch)
    duration = int((time.monotonic() - started) * 1000)
    return _store(
        scope=ReportScope.BATCH, batch=batch, track=batch.track, computed=computed, duration_ms=duration
    )


def quality_recompute_track(*, track: str) -> QualityReport:
    if track not in Track.values:
        raise DomainError(f"track must be one of: {', '.join(Track.values)}.", field="track")
    started = time.monotonic()
    computed = compute(track=track)
    duration = int((time.monotonic() - started) * 1000)
    return _store(scope=ReportScope.TRACK, batch=None, track=track, computed=computed, duration_ms=duration)


@dataclass(frozen=True)
class Due:
    batches: list[int]
    tracks: list[str]


def quality_due() -> Due:
    """Batches with judgments newer than their report (or none yet), and the tracks they belong to."""
    newest = Judgment.objects.filter(batch=OuterRef("pk")).order_by("-id").values("id")[:1]
    reported = QualityReport.objects.filter(scope=ReportScope.BATCH, batch=OuterRef("pk")).values(
        "last_judgment_id"
    )[:1]
    rows = (
        Batch.objects.exclude(status=BatchStatus.DRAFT)
        .annotate(newest=Subquery(newest), reported=Subquery(reported))
        .values_list("pk", "track", "newest", "reported")
    )
    batches: list[int] = []
    tracks: set[str] = set()
    for pk, track, newest_id, reported_id in rows:
        if newest_id is not None and (reported_id is None or newest_id > reported_id):
            batches.append(pk)
            tracks.add(track)
    return Due(batches=sorted(batches), tracks=sorted(tracks))


def quality_enqueue_recompute(*, batch_ids: list[int], tracks: list[str]) -> None:
    """Queue recomputations after the current transaction commits (the tasks are idempotent)."""
    from annotate.quality.tasks import recompute_batch_quality, recompute_track_quality

    def enqueue() -> None:
        for batch_id in batch_ids:
            recompute_batch_quality.delay(batch_id)
        for track in tracks:
            recompute_track_quality.delay(track)

    transaction.on_commit(enqueue)
