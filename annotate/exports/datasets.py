"""The columns of each export schema: name, type and meaning, in file order.

Types are named here (the writers map them to Arrow types) so that importing this module does not load
pyarrow into every web process. The descriptions are the dataset card's column table.

Type names:
  string, int64, float64, bool, timestamp (UTC, microseconds), int64_list,
  messages   a list of {role, content} (Python: a list of two-key dicts),
  assistant  one assistant message, given as its text; written as [{"role": "assistant", "content": text}],
  responses  judgments_raw's list of {id, slot, model, sampling_config, content, safety_label}.
"""

from __future__ import annotations

from dataclasses import dataclass

from annotate.exports.models import ExportSchema


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True


_PROVENANCE = [
    Column("margin", "float64", "Preference margin from the strength, by the spec's LLaMa-2 preset.", False),
    Column(
        "strength",
        "string",
        "significantly_better | better | slightly_better | negligibly_better_or_unsure; "
        "for ranking pairs derived from the rank gap; for majority rows the lower median of the majority.",
        False,
    ),
    Column(
        "group_id",
        "string",
        "Rows from one judgment share it (j<judgment id>: the C(K,2) pairs of a ranking); "
        "majority rows of one item share i<item id>.",
        False,
    ),
    Column("judgment_id", "int64", "The judgment (null for majority rows)."),
    Column("item_id", "int64", "The item (conversation) judged.", False),
    Column("batch", "int64", "The batch id.", False),
    Column("track", "string", "helpfulness | safety.", False),
    Column("mode", "string", "pairwise | ranking: how the judgment was collected.", False),
    Column(
        "safety_bin",
        "string",
        "Safety track: chosen_safe_other_unsafe | both_safe | both_unsafe | chosen_unsafe_other_safe "
        "(the last only with keep_unsafe_chosen); null on the helpfulness track.",
    ),
    Column(
        "annotator", "string", "Stable pseudonym of the annotator, never a username (null for majority rows)."
    ),
    Column("annotator_kind", "string", "human | ai (null for majority rows)."),
    Column(
        "source",
        "string",
        "human, or ai:<judge>@v<version> for an AI judge's judgment (spec field ai); majority rows: the one "
        "source of all their votes, or mixed.",
        False,
    ),
    Column("chosen_model", "string", "Model that wrote the chosen response.", False),
    Column("rejected_model", "string", "Model that wrote the rejected response.", False),
    Column("chosen_response_id", "int64", "Id of the chosen response.", False),
    Column("rejected_response_id", "int64", "Id of the rejected response.", False),
    Column(
        "chosen_sampling_config", "string", "Sampling config label of the chosen response (null if imported)."
    ),
    Column("chosen_temperature", "float64", "Sampling temperature of the chosen response."),
    Column("chosen_top_p", "float64", "Sampling top_p of the chosen response."),
    Column("chosen_max_tokens", "int64", "Sampling max_tokens of the chosen response."),
    Column("chosen_seed", "int64", "Sampling seed of the chosen response."),
    Column(
        "chosen_system_prompt",
        "string",
        "System prompt the chosen response was generated with (kept out of the messages).",
    ),
    Column("rejected_sampling_config", "string", "Sampling config label of the rejected response."),
    Column("rejected_temperature", "float64", "Sampling temperature of the rejected response."),
    Column("rejected_top_p", "float64", "Sampling top_p of the rejected response."),
    Column("rejected_max_tokens", "int64", "Sampling max_tokens of the rejected response."),
    Column("rejected_seed", "int64", "Sampling seed of the rejected response."),
    Column("rejected_system_prompt", "string", "System prompt the rejected response was generated with."),
    Column(
        "position_chosen",
        "int64",
        "Where the chosen response was shown to the annotator (0 = first/left); null for majority rows.",
    ),
    Column("time_spent_ms", "int64", "Time the annotator spent on the item (null for majority rows)."),
    Column(
        "guidelines_version",
        "int64",
        "Guidelines version the judgment was made under (majority: highest).",
        False,
    ),
    Column("is_gold", "bool", "Whether the item is a gold (quality control) item.", False),
    Column(
        "votes",
        "int64",
        "Comparisons of this response pair in the item (after filters); set when votes are counted "
        "(aggregation majority, min_agreement or min_judgments), else null.",
    ),
    Column(
        "agreement",
        "float64",
        "Share of those comparisons on the majority side; set when votes are counted, else null.",
    ),
    Column("created_at", "timestamp", "When the judgment was submitted (majority: the latest vote).", False),
]

TRL_PREFERENCE = [
    Column(
        "id",
        "string",
        "Unique row id: j<judgment> (pairwise), j<judgment>:<chosen>><rejected> (ranking "
        "pair), i<item>:<chosen>><rejected> (majority).",
        False,
    ),
    Column(
        "prompt",
        "messages",
        "The conversation before the judged turn, as {role, content} messages (the item's conversation; a "
        "sampling config's system prompt is not added, see *_system_prompt).",
        False,
    ),
    Column("chosen", "assistant", "The preferred response as one assistant message.", False),
    Column("rejected", "assistant", "The other response as one assistant message.", False),
    *_PROVENANCE,
]

PAIRWISE_FLAT = [
    TRL_PREFERENCE[0],
    Column("prompt", "string", "Text of the last message of the conversation (the user's turn).", False),
    Column(
        "context",
        "string",
        "Earlier messages of a multi-turn conversation as plain text, '<role>: <content>' blocks "
        "separated by a blank line; empty for a single-turn prompt.",
        False,
    ),
    Column("chosen", "string", "Text of the preferred response.", False),
    Column("rejected", "string", "Text of the other response.", False),
    *_PROVENANCE,
]

JUDGMENTS_RAW = [
    Column("assignment_id", "int64", "The assignment (an annotator's lease on an item).", False),
    Column("judgment_id", "int64", "The judgment; null when the item was skipped or only flagged."),
    Column("status", "string", "Assignment status: submitted | skipped | active | expired.", False),
    Column("skipped", "bool", "The annotator skipped the item.", False),
    Column("skip_reason", "string", "Why it was skipped (empty if not)."),
    Column("flagged", "bool", "The annotator flagged the item (broken, offensive, needs review).", False),
    Column("flag", "string", "broken | offensive | needs_review; null when not flagged."),
    Column("flag_note", "string", "The annotator's note on the flag."),
    Column(
        "unsafe_choice",
        "bool",
        "Pairwise safety judgment whose chosen response is unsafe while the other is safe (LLaMa-2's dropped "
        "bin); recorded here, left out of comparison exports by default.",
    ),
    Column("batch", "int64", "The batch id.", False),
    Column("track", "string", "helpfulness | safety.", False),
    Column("mode", "string", "pairwise | ranking.", False),
    Column("item_id", "int64", "The item (conversation) judged.", False),
    Column("is_gold", "bool", "Whether the item is a gold item.", False),
    Column("annotator", "string", "Stable pseudonym of the annotator.", False),
    Column("annotator_kind", "string", "human | ai.", False),
    Column("source", "string", "human, or ai:<judge>@v<version> for an AI judge's judgment.", False),
    Column(
        "prompt", "messages", "The conversation before the judged turn, as {role, content} messages.", False
    ),
    Column(
        "responses",
        "responses",
        "The item's responses in slot order: {id, slot, model, sampling_config, content, safety_label} "
        "(safety_label: safe | unsafe on the safety track, else null).",
        False,
    ),
    Column("positions", "int64_list", "Response ids in the order they were shown to the annotator.", False),
    Column("chosen_response_id", "int64", "Pairwise: the preferred response."),
    Column("rejected_response_id", "int64", "Pairwise: the other response."),
    Column("strength", "string", "Pairwise: the LLaMa-2 strength."),
    Column("ranking", "int64_list", "Ranking: response ids, best first."),
    Column("safety_bin", "string", "Pairwise safety track: the LLaMa-2 safety bin."),
    Column("position_chosen", "int64", "Pairwise: where the chosen response was shown (0 = first/left)."),
    Column("rationale", "string", "The annotator's optional rationale."),
    Column("time_spent_ms", "int64", "Time spent on the item."),
    Column("guidelines_version", "int64", "Guidelines version the annotator worked under.", False),
    Column(
        "created_at",
        "timestamp",
        "When the judgment was submitted (skips: when skipped; flags only: when leased).",
        False,
    ),
]

COLUMNS: dict[str, list[Column]] = {
    ExportSchema.TRL_PREFERENCE: TRL_PREFERENCE,
    ExportSchema.PAIRWISE_FLAT: PAIRWISE_FLAT,
    ExportSchema.JUDGMENTS_RAW: JUDGMENTS_RAW,
}
