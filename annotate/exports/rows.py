"""Turning judgment rows into dataset rows: margins, ranking pairs, the safety rule, votes and majorities.

Rules (the dataset card repeats them):
- Margin: the LLaMa-2 strength mapped by the spec's preset: small = 1, 2/3, 1/3, 0 and large = 3, 2, 1, 0
  for significantly better, better, slightly better, negligibly better / unsure.
- Rankings: a ranking of K responses gives all C(K,2) pairs, the better-ranked response chosen, in the
  order (1st, 2nd), (1st, 3rd) ... (1st, Kth), (2nd, 3rd) ...; they share `group_id`. Their strength
  comes from the rank gap: 1 -> slightly_better, 2 -> better, 3 or more -> significantly_better (a ranking
  never says "negligibly": drop_negligible keeps every ranking pair).
- Safety rule (LLaMa-2): a comparison whose chosen response is unsafe while the other is safe is left out
  unless keep_unsafe_chosen; for a ranking pair the bin comes from the judgment's labels of the two.
- Votes: when counted, the comparisons (after the rules above) of one item and one response pair are its
  votes; the majority side has more votes than the other (a tie has none); agreement is the share of
  votes on the majority side (the larger side, 0.5 for a tie). min_judgments and min_agreement keep the
  pairs that reach them; aggregation "majority" then emits one row per kept pair that has a majority:
  the majority's chosen response, strength = the lower median of the majority's strength levels, safety
  labels by majority per response (ties count as unsafe) and the safety rule applied again to that bin.
"""

from __future__ import annotations

from typing import Any

import orjson

from annotate.core.choices import STRENGTH_LEVEL, Mode, SafetyBin, SafetyLabel, Strength, safety_bin
from annotate.exports.datasets import TRL_PREFERENCE
from annotate.exports.queries import COMPARISON_SELECT, CONFIG_COLUMNS, PAIRWISE_HEAD, PAIRWISE_TAIL, C, R
from annotate.exports.spec import Aggregation, ExportSpec

MARGIN_PRESETS: dict[str, dict[str, float]] = {
    "small": {
        Strength.SIGNIFICANTLY_BETTER.value: 1.0,
        Strength.BETTER.value: 2 / 3,
        Strength.SLIGHTLY_BETTER.value: 1 / 3,
        Strength.NEGLIGIBLY_BETTER_OR_UNSURE.value: 0.0,
    },
    "large": {
        Strength.SIGNIFICANTLY_BETTER.value: 3.0,
        Strength.BETTER.value: 2.0,
        Strength.SLIGHTLY_BETTER.value: 1.0,
        Strength.NEGLIGIBLY_BETTER_OR_UNSURE.value: 0.0,
    },
}
STRENGTH_BY_LEVEL: dict[int, str] = {level: str(name) for name, level in STRENGTH_LEVEL.items()}
UNSAFE_CHOSEN = str(SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE)
SAFE = str(SafetyLabel.SAFE)
PAIRWISE = str(Mode.PAIRWISE)

# Output positions of the comparison columns (trl_preference order; pairwise_flat differs in the first 5).
OUT = {column.name: index for index, column in enumerate(TRL_PREFERENCE)}
_MESSAGE_CACHE_SIZE = 4096
NO_CONFIG: tuple[Any, ...] = (None,) * len(CONFIG_COLUMNS)
# A pairwise comparison copies blocks of the query's columns as they are: their names must line up.
_copied = [
    *(name for name, _ in COMPARISON_SELECT[PAIRWISE_HEAD]),
    *(f"chosen_{name}" for name in CONFIG_COLUMNS),
    *(f"rejected_{name}" for name in CONFIG_COLUMNS),
    *(name for name, _ in COMPARISON_SELECT[PAIRWISE_TAIL]),
]
if [c.name for c in TRL_PREFERENCE[OUT["judgment_id"] :]] != _copied:
    raise ImportError("queries.COMPARISON_SELECT and datasets.TRL_PREFERENCE disagree on the column order.")


class ExportDataError(Exception):
    """Stored data the export cannot represent (a malformed conversation, a ranking of unknown responses)."""


def gap_strength(gap: int) -> str:
    if gap >= 3:
        return str(Strength.SIGNIFICANTLY_BETTER)
    if gap == 2:
        return str(Strength.BETTER)
    return str(Strength.SLIGHTLY_BETTER)


def lower_median(levels: list[int]) -> int:
    ordered = sorted(levels)
    return ordered[(len(ordered) - 1) // 2]


class Messages:
    """Conversations as lists of {role, content}, parsed once per item while the item is recent (the
    overlap judgments of an item are usually close in id order, because items are claimed in order)."""

    def __init__(self) -> None:
        self.cache: dict[int, list[dict[str, str]]] = {}

    def __call__(self, item_id: int, text: str) -> list[dict[str, str]]:
        cached = self.cache.get(item_id)
        return cached if cached is not None else self.parse(item_id, text)

    def parse(self, item_id: int, text: str) -> list[dict[str, str]]:
        if len(self.cache) >= _MESSAGE_CACHE_SIZE:
            self.cache.clear()
        messages = self.cache[item_id] = parse_messages(item_id, text)
        return messages


def parse_messages(item_id: int, text: str) -> list[dict[str, str]]:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ExportDataError(f"Item {item_id}: the conversation is not valid JSON.") from None
    if type(parsed) is list:
        for m in parsed:
            if type(m) is not dict or len(m) != 2 or type(m.get("role")) is not str:
                break
            if type(m.get("content")) is not str:
                break
        else:
            # Already exactly [{role, content}, ...]; jsonb puts "role" before "content" (shorter first).
            return parsed
        messages = []
        for m in parsed:
            if type(m) is not dict or type(m.get("role")) is not str or type(m.get("content")) is not str:
                break
            messages.append({"role": m["role"], "content": m["content"]})  # extra keys are left out
        else:
            return messages
    raise ExportDataError(f"Item {item_id}: the conversation is not a list of {{role, content}} strings.")


class ComparisonBuilder:
    """Comparison rows (trl_preference layout) from the rows of queries.comparison_query, chunk by chunk.

    With votes counted, rows arrive ordered by item; the rows of the last, possibly unfinished item are held
    back until the next item starts or finish() is called, so memory is bounded by one item's judgments.
    """

    def __init__(self, spec: ExportSpec, configs: dict[int, tuple[Any, ...]]) -> None:
        self.spec = spec
        self.configs = configs
        self.margins = MARGIN_PRESETS[spec.margin]
        self.keep_unsafe = spec.keep_unsafe_chosen
        self.messages = Messages()
        self.guideline_versions: set[tuple[int, int]] = set()
        self._item: int | None = None
        self._pending: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []

    # -- one judgment -> comparisons ------------------------------------------------------------------

    def _pairwise(self, r: tuple[Any, ...]) -> tuple[Any, ...]:
        key = f"j{r[C.id]}"
        strength = r[C.strength]
        get = self.configs.get
        return (
            key, self.messages(r[C.item_id], r[C.conversation]), r[C.chosen_content], r[C.rejected_content],
            self.margins[strength], strength, key, *r[PAIRWISE_HEAD],
            *get(r[C.chosen_config], NO_CONFIG), *get(r[C.rejected_config], NO_CONFIG), *r[PAIRWISE_TAIL],
        )  # fmt: skip

    def _ranking_pairs(self, r: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        jid, item_id = r[C.id], r[C.item_id]
        responses = {entry[0]: entry for entry in orjson.loads(r[C.ranking_responses] or "[]")}
        ranking = [int(pk) for pk in orjson.loads(r[C.ranking])]
        if any(pk not in responses for pk in ranking):
            raise ExportDataError(f"Judgment {jid}: its ranking names responses that item {item_id} lacks.")
        positions = [int(pk) for pk in orjson.loads(r[C.ranking_positions] or "[]")]
        labels = orjson.loads(r[C.safety_labels]) if r[C.safety_labels] else None
        prompt = self.messages(item_id, r[C.conversation])
        group = f"j{jid}"
        margins = self.margins
        tail = (r[C.time_spent_ms], r[C.guidelines_version], r[C.is_gold], None, None, r[C.created_at])
        configs = self.configs
        out = []
        for a in range(len(ranking)):
            for b in range(a + 1, len(ranking)):
                chosen, rejected = ranking[a], ranking[b]
                bin_value = None
                if labels is not None:
                    bin_value = str(
                        safety_bin(labels.get(str(chosen)) == SAFE, labels.get(str(rejected)) == SAFE)
                    )
                    if bin_value == UNSAFE_CHOSEN and not self.keep_unsafe:
                        continue
                strength = gap_strength(b - a)
                c, x = responses[chosen], responses[rejected]
                position = positions.index(chosen) if chosen in positions else None
                out.append(
                    (
                        f"j{jid}:{chosen}>{rejected}", prompt, c[2], x[2], margins[strength], strength, group,
                        jid, item_id, r[C.batch], r[C.track], r[C.mode], bin_value,
                        r[C.annotator], r[C.annotator_kind], r[C.source], c[1], x[1], chosen, rejected,
                        *configs.get(c[3], NO_CONFIG), *configs.get(x[3], NO_CONFIG),
                        position, *tail,
                    )
                )  # fmt: skip
        return out

    # -- chunks ---------------------------------------------------------------------------------------

    def rows(self, chunk: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        batch, version = C.batch, C.guidelines_version
        self.guideline_versions.update({(r[batch], r[version]) for r in chunk})
        if self.spec.needs_item_votes:
            return self._grouped(chunk)
        # The hot loop of every export: _pairwise inlined, locals only.
        out: list[tuple[Any, ...]] = []
        append, extend, ranking_pairs = out.append, out.extend, self._ranking_pairs
        margins, get, cache, parse = self.margins, self.configs.get, self.messages.cache, self.messages.parse
        head, tail, no_config = PAIRWISE_HEAD, PAIRWISE_TAIL, NO_CONFIG
        i_id, i_mode, i_item, i_conv, i_strength = C.id, C.mode, C.item_id, C.conversation, C.strength
        i_chosen, i_rejected, i_chosen_config, i_rejected_config = (
            C.chosen_content, C.rejected_content, C.chosen_config, C.rejected_config,
        )  # fmt: skip
        for r in chunk:
            if r[i_mode] != PAIRWISE:
                extend(ranking_pairs(r))
                continue
            prompt = cache.get(r[i_item])
            if prompt is None:
                prompt = parse(r[i_item], r[i_conv])
            key = f"j{r[i_id]}"
            strength = r[i_strength]
            append(
                (
                    key, prompt, r[i_chosen], r[i_rejected], margins[strength], strength, key, *r[head],
                    *get(r[i_chosen_config], no_config), *get(r[i_rejected_config], no_config), *r[tail],
                )
            )  # fmt: skip
        return out

    def finish(self) -> list[tuple[Any, ...]]:
        out = self._flush_item() if self._pending else []
        self._item = None
        return out

    # -- votes per item --------------------------------------------------------------------------------

    def _grouped(self, chunk: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for r in chunk:
            if r[C.item_id] != self._item:
                if self._pending:
                    out.extend(self._flush_item())
                self._item = r[C.item_id]
            comparisons = [self._pairwise(r)] if r[C.mode] == PAIRWISE else self._ranking_pairs(r)
            labels = orjson.loads(r[C.safety_labels]) if r[C.safety_labels] else None
            for row in comparisons:
                chosen, rejected = row[OUT["chosen_response_id"]], row[OUT["rejected_response_id"]]
                safe = None
                if labels is not None:
                    safe = (labels.get(str(chosen)) == SAFE, labels.get(str(rejected)) == SAFE)
                self._pending.append((row, (chosen, rejected, safe)))
        return out

    def _flush_item(self) -> list[tuple[Any, ...]]:
        pending, self._pending = self._pending, []
        pairs: dict[tuple[int, int], list[int]] = {}
        for index, (_, (chosen, rejected, _safe)) in enumerate(pending):
            pairs.setdefault((min(chosen, rejected), max(chosen, rejected)), []).append(index)

        spec = self.spec
        kept: dict[tuple[int, int], tuple[int | None, int, float]] = {}
        for pair, indexes in pairs.items():
            counts: dict[int, int] = {}
            for index in indexes:
                winner = pending[index][1][0]
                counts[winner] = counts.get(winner, 0) + 1
            total = len(indexes)
            top = max(counts.values())
            majority = (
                next(pk for pk, n in counts.items() if n == top)
                if list(counts.values()).count(top) == 1
                else None
            )
            agreement = top / total
            if total < spec.min_judgments:
                continue
            if spec.min_agreement is not None and agreement < spec.min_agreement:
                continue
            kept[pair] = (majority, total, agreement)

        votes_at, agreement_at = OUT["votes"], OUT["agreement"]
        if spec.aggregation == Aggregation.ALL:
            out = []
            for row, (chosen, rejected, _safe) in pending:
                stats = kept.get((min(chosen, rejected), max(chosen, rejected)))
                if stats is not None:
                    out.append((*row[:votes_at], stats[1], stats[2], *row[agreement_at + 1 :]))
            return out

        out = []
        for pair, (majority, total, agreement) in kept.items():
            if majority is None:
                continue
            row = self._majority_row([pending[i] for i in pairs[pair]], majority, total, agreement)
            if row is not None:
                out.append(row)
        return out

    def _majority_row(
        self,
        votes: list[tuple[tuple[Any, ...], tuple[Any, ...]]],
        majority: int,
        total: int,
        agreement: float,
    ) -> tuple[Any, ...] | None:
        winners = [(row, safe) for row, (chosen, _rejected, safe) in votes if chosen == majority]
        template = list(winners[0][0])
        chosen, rejected = template[OUT["chosen_response_id"]], template[OUT["rejected_response_id"]]
        strength = STRENGTH_BY_LEVEL[
            lower_median([STRENGTH_LEVEL[row[OUT["strength"]]] for row, _ in winners])
        ]
        if self.spec.drop_negligible and strength == Strength.NEGLIGIBLY_BETTER_OR_UNSURE:
            return None
        bin_value = None
        labelled = [(vote_chosen, safe) for _row, (vote_chosen, _r, safe) in votes if safe is not None]
        if labelled:
            # Each vote labelled both responses; count the labels per response, a tie counting as unsafe.
            safe_votes = {chosen: 0, rejected: 0}
            for vote_chosen, (chosen_safe, rejected_safe) in labelled:
                first, second = (chosen, rejected) if vote_chosen == chosen else (rejected, chosen)
                safe_votes[first] += 1 if chosen_safe else -1
                safe_votes[second] += 1 if rejected_safe else -1
            bin_value = str(safety_bin(safe_votes[chosen] > 0, safe_votes[rejected] > 0))
            if bin_value == UNSAFE_CHOSEN and not self.keep_unsafe:
                return None
        item_id = template[OUT["item_id"]]
        template[OUT["id"]] = f"i{item_id}:{chosen}>{rejected}"
        template[OUT["group_id"]] = f"i{item_id}"
        template[OUT["strength"]] = strength
        template[OUT["margin"]] = self.margins[strength]
        template[OUT["safety_bin"]] = bin_value
        for name in ("judgment_id", "annotator", "annotator_kind", "position_chosen", "time_spent_ms"):
            template[OUT[name]] = None
        template[OUT["guidelines_version"]] = max(row[OUT["guidelines_version"]] for row, _ in votes)
        template[OUT["created_at"]] = max(row[OUT["created_at"]] for row, _ in votes)
        sources = {row[OUT["source"]] for row, _ in votes}
        template[OUT["source"]] = sources.pop() if len(sources) == 1 else "mixed"
        template[OUT["votes"]] = total
        template[OUT["agreement"]] = agreement
        return tuple(template)


def flat_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A trl_preference row as pairwise_flat: the prompt split into the last message and the context."""
    messages = row[1]
    last = messages[-1]["content"] if messages else ""
    context = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages[:-1])
    return (row[0], last, context, row[2], row[3], *row[4:])


class RawBuilder:
    """judgments_raw rows from the rows of queries.raw_query."""

    def __init__(self) -> None:
        self.messages = Messages()
        self.guideline_versions: set[tuple[int, int]] = set()

    def rows(self, chunk: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        out = []
        loads = orjson.loads
        for r in chunk:
            self.guideline_versions.add((r[R.batch], r[R.guidelines_version]))
            labels = loads(r[R.safety_labels]) if r[R.safety_labels] else {}
            responses = [
                {
                    "id": e[0],
                    "slot": e[1],
                    "model": e[2],
                    "sampling_config": e[3],
                    "content": e[4],
                    "safety_label": labels.get(str(e[0])),
                }
                for e in loads(r[R.responses] or "[]")
            ]
            has_judgment = r[R.judgment_id] is not None
            out.append(
                (
                    r[R.assignment_id], r[R.judgment_id], r[R.status], r[R.status] == "skipped",
                    r[R.skip_reason], r[R.flag] != "", r[R.flag] or None, r[R.flag_note],
                    r[R.unsafe_choice], r[R.batch], r[R.track], r[R.mode], r[R.item_id], r[R.is_gold],
                    r[R.annotator], r[R.annotator_kind], r[R.source],
                    self.messages(r[R.item_id], r[R.conversation]),
                    responses, [int(pk) for pk in loads(r[R.positions])],
                    r[R.chosen_response_id], r[R.rejected_response_id], r[R.strength],
                    [int(pk) for pk in loads(r[R.ranking])] if r[R.ranking] else None,
                    r[R.safety_bin], r[R.position_chosen], r[R.rationale] if has_judgment else None,
                    r[R.time_spent_ms], r[R.guidelines_version], r[R.created_at],
                )
            )  # fmt: skip
        return out

    def finish(self) -> list[tuple[Any, ...]]:
        return []
