"""The filter spec of an export: parsed and validated into a frozen dataclass.

The spec arrives as JSON (the API's request body, an admin action). Every problem raises a DomainError naming
the field, so the API answers 400 with `{"fields": {"<field>": ["..."]}}`. Unknown keys are refused rather
than ignored: a typo such as `min_agreemnt` silently exporting everything would be worse than an error.

Example (every key is optional; these are the defaults except `batches` and the time range):

    {
      "batches": [12, 13],                  // batch ids; left out = every batch
      "track": "helpfulness",               // "helpfulness" | "safety"; left out = both
      "created_from": "2026-01-01T00:00:00Z",  // judgment time, inclusive, ISO 8601 with an offset
      "created_until": "2026-02-01T00:00:00Z", // exclusive
      "include_gold": false,                // judgments of gold items
      "ai": "none",                         // AI judges' judgments: "none" | "include" | "only"
      "exclude_flagged_annotators": false,  // leave out annotators flagged in a batch's quality report
      "aggregation": "all",                 // "all" (every judgment) | "majority" (one row per item and pair)
      "min_agreement": null,                // 0..1: keep pairs whose majority share is at least this
      "min_judgments": 1,                   // keep pairs judged at least this many times
      "drop_negligible": false,             // leave out "negligibly better / unsure" comparisons
      "keep_unsafe_chosen": false,          // keep comparisons with the chosen unsafe, the other safe
      "margin": "small"                     // LLaMa-2 preset: "small" (1, 2/3, 1/3, 0) | "large" (3, 2, 1, 0)
    }
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from annotate.core.choices import Track
from annotate.core.errors import DomainError
from annotate.exports.models import ExportFormat, ExportSchema

MAX_BATCHES = 10_000


class AiJudgments:
    """Which judgments of AI judges (annotate/judges) an export reads beside the humans'."""

    NONE = "none"  # humans only (the default)
    INCLUDE = "include"  # humans and AI judges
    ONLY = "only"  # AI judges only
    values = (NONE, INCLUDE, ONLY)


class Aggregation:
    ALL = "all"
    MAJORITY = "majority"
    values = (ALL, MAJORITY)


class MarginPreset:
    SMALL = "small"
    LARGE = "large"
    values = (SMALL, LARGE)


@dataclass(frozen=True)
class ExportSpec:
    batches: tuple[int, ...] | None = None
    track: str | None = None
    created_from: datetime | None = None
    created_until: datetime | None = None
    include_gold: bool = False
    ai: str = AiJudgments.NONE
    exclude_flagged_annotators: bool = False
    aggregation: str = Aggregation.ALL
    min_agreement: float | None = None
    min_judgments: int = 1
    drop_negligible: bool = False
    keep_unsafe_chosen: bool = False
    margin: str = MarginPreset.SMALL

    @property
    def needs_item_votes(self) -> bool:
        """Whether rows must be grouped by item to count votes (majority, agreement or judgment filters)."""
        return (
            self.aggregation == Aggregation.MAJORITY
            or self.min_agreement is not None
            or self.min_judgments > 1
        )

    def to_dict(self) -> dict[str, Any]:
        """The normalized spec as JSON: stored on the job and in the manifest; parses back to itself."""
        return {
            "batches": list(self.batches) if self.batches is not None else None,
            "track": self.track,
            "created_from": _iso(self.created_from),
            "created_until": _iso(self.created_until),
            "include_gold": self.include_gold,
            "ai": self.ai,
            "exclude_flagged_annotators": self.exclude_flagged_annotators,
            "aggregation": self.aggregation,
            "min_agreement": self.min_agreement,
            "min_judgments": self.min_judgments,
            "drop_negligible": self.drop_negligible,
            "keep_unsafe_chosen": self.keep_unsafe_chosen,
            "margin": self.margin,
        }


# The options that shape comparisons; judgments_raw exports judgments as they are and refuses them.
COMPARISON_OPTIONS = (
    "aggregation",
    "min_agreement",
    "min_judgments",
    "drop_negligible",
    "keep_unsafe_chosen",
    "margin",
)
FIELDS = (
    "batches",
    "track",
    "created_from",
    "created_until",
    "include_gold",
    "ai",
    "exclude_flagged_annotators",
    *COMPARISON_OPTIONS,
)
_DEFAULTS = ExportSpec()


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def _bool(raw: Mapping[str, Any], name: str) -> bool:
    value = raw.get(name, getattr(_DEFAULTS, name))
    if not isinstance(value, bool):
        raise DomainError(f"{name} must be true or false.", field=name)
    return value


def _choice(
    raw: Mapping[str, Any], name: str, values: tuple[str, ...], *, nullable: bool = False
) -> str | None:
    value = raw.get(name, getattr(_DEFAULTS, name))
    if value is None and nullable:
        return None
    if not isinstance(value, str) or value not in values:
        raise DomainError(f"{name} must be one of: {', '.join(values)}.", field=name)
    return value


def _datetime(raw: Mapping[str, Any], name: str) -> datetime | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DomainError(f"{name} must be an ISO 8601 date-time string.", field=name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise DomainError(
            f"{name} is not an ISO 8601 date-time (e.g. 2026-01-31T00:00:00Z).", field=name
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise DomainError(f"{name} needs a time zone offset (e.g. 2026-01-31T00:00:00Z).", field=name)
    return parsed.astimezone(UTC)


def _batches(raw: Mapping[str, Any]) -> tuple[int, ...] | None:
    value = raw.get("batches")
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise DomainError(
            "batches must be a non-empty list of batch ids (or left out for all).", field="batches"
        )
    if len(value) > MAX_BATCHES:
        raise DomainError(f"batches is limited to {MAX_BATCHES} ids.", field="batches")
    if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value):
        raise DomainError("batches must be a list of positive integer batch ids.", field="batches")
    ids = tuple(sorted(set(value)))
    from annotate.batches.models import Batch

    found = set(Batch.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in found]
    if missing:
        shown = ", ".join(str(pk) for pk in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DomainError(f"Unknown batch id(s): {shown}.", code="not_found", field="batches")
    return ids


def parse_export_spec(raw: Any, *, schema: str) -> ExportSpec:
    """Validate a filter spec (a JSON object) for an export of `schema`; raises DomainError(field=...)."""
    parse_schema(schema)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise DomainError("The spec must be a JSON object.", field="spec")
    unknown = sorted(str(k) for k in raw if k not in FIELDS)
    if unknown:
        raise DomainError(
            f"Unknown spec field {unknown[0]!r}; known fields: {', '.join(FIELDS)}.",
            code="unknown_field",
            field=unknown[0],
        )

    track = _choice(raw, "track", tuple(Track.values), nullable=True)
    created_from = _datetime(raw, "created_from")
    created_until = _datetime(raw, "created_until")
    if created_from and created_until and created_from >= created_until:
        raise DomainError("created_until must be later than created_from.", field="created_until")

    min_agreement = raw.get("min_agreement")
    if min_agreement is not None:
        if isinstance(min_agreement, bool) or not isinstance(min_agreement, int | float):
            raise DomainError("min_agreement must be a number between 0 and 1.", field="min_agreement")
        if not math.isfinite(min_agreement) or not 0 <= min_agreement <= 1:
            raise DomainError("min_agreement must be between 0 and 1.", field="min_agreement")
        min_agreement = float(min_agreement)

    min_judgments = raw.get("min_judgments", _DEFAULTS.min_judgments)
    if (
        isinstance(min_judgments, bool)
        or not isinstance(min_judgments, int)
        or not 1 <= min_judgments <= 1000
    ):
        raise DomainError("min_judgments must be a whole number from 1 to 1000.", field="min_judgments")

    spec = ExportSpec(
        batches=_batches(raw),
        track=track,
        created_from=created_from,
        created_until=created_until,
        include_gold=_bool(raw, "include_gold"),
        ai=_choice(raw, "ai", AiJudgments.values) or AiJudgments.NONE,
        exclude_flagged_annotators=_bool(raw, "exclude_flagged_annotators"),
        aggregation=_choice(raw, "aggregation", Aggregation.values) or Aggregation.ALL,
        min_agreement=min_agreement,
        min_judgments=min_judgments,
        drop_negligible=_bool(raw, "drop_negligible"),
        keep_unsafe_chosen=_bool(raw, "keep_unsafe_chosen"),
        margin=_choice(raw, "margin", MarginPreset.values) or MarginPreset.SMALL,
    )
    if schema == ExportSchema.JUDGMENTS_RAW:
        for name in COMPARISON_OPTIONS:
            if getattr(spec, name) != getattr(_DEFAULTS, name):
                raise DomainError(
                    f"{name} shapes comparisons; judgments_raw exports every judgment as it is.",
                    field=name,
                )
    return spec


def parse_schema(schema: Any) -> str:
    if not isinstance(schema, str) or schema not in ExportSchema.values:
        raise DomainError(f"schema must be one of: {', '.join(ExportSchema.values)}.", field="schema")
    return schema


def parse_format(fmt: Any) -> str:
    if not isinstance(fmt, str) or fmt not in ExportFormat.values:
        raise DomainError(f"format must be one of: {', '.join(ExportFormat.values)}.", field="format")
    return fmt
