"""The filter spec: every malformed spec is refused with a DomainError naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from annotate.core.errors import DomainError
from annotate.exports.spec import ExportSpec, parse_export_spec, parse_format, parse_schema
from tests import factories


def refused(raw: Any, schema: str = "trl_preference") -> DomainError:
    with pytest.raises(DomainError) as caught:
        parse_export_spec(raw, schema=schema)
    return caught.value


def test_an_empty_spec_gives_the_defaults() -> None:
    spec = parse_export_spec({}, schema="trl_preference")
    assert spec == ExportSpec()
    assert spec.ai == "none"
    assert spec.aggregation == "all"
    assert spec.margin == "small"
    assert not spec.include_gold
    assert not spec.keep_unsafe_chosen
    assert not spec.needs_item_votes


@pytest.mark.django_db
def test_a_full_spec_is_normalized_and_round_trips() -> None:
    b1, b2 = factories.BatchFactory(), factories.BatchFactory()
    raw = {
        "batches": [b2.pk, b1.pk, b2.pk],
        "track": "safety",
        "created_from": "2026-01-01T01:00:00+01:00",
        "created_until": "2026-02-01T00:00:00Z",
        "include_gold": True,
        "ai": "include",
        "aggregation": "majority",
        "min_agreement": 0.75,
        "min_judgments": 2,
        "drop_negligible": True,
        "keep_unsafe_chosen": True,
        "margin": "large",
    }
    spec = parse_export_spec(raw, schema="pairwise_flat")
    assert spec.batches == tuple(sorted({b1.pk, b2.pk}))
    assert spec.created_from == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert spec.needs_item_votes
    as_dict = spec.to_dict()
    assert as_dict["created_from"] == "2026-01-01T00:00:00Z"
    assert parse_export_spec(as_dict, schema="pairwise_flat") == spec


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"batchs": [1]}, "batchs"),
        ({"track": "helpful"}, "track"),
        ({"track": 3}, "track"),
        ({"batches": "1,2"}, "batches"),
        ({"batches": []}, "batches"),
        ({"batches": [1, "2"]}, "batches"),
        ({"batches": [True]}, "batches"),
        ({"batches": [0]}, "batches"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_from": "2026-13-01T00:00:00Z"}, "created_from"),
        ({"created_until": 1767225600}, "created_until"),
        ({"created_from": "2026-01-01T00:00:00"}, "created_from"),
        ({"created_from": "2026-02-01T00:00:00Z", "created_until": "2026-01-01T00:00:00Z"}, "created_until"),
        ({"include_gold": "yes"}, "include_gold"),
        ({"include_gold": 1}, "include_gold"),
        ({"ai": "robots"}, "ai"),
        ({"aggregation": "mean"}, "aggregation"),
        ({"min_agreement": 1.5}, "min_agreement"),
        ({"min_agreement": -0.1}, "min_agreement"),
        ({"min_agreement": "0.5"}, "min_agreement"),
        ({"min_agreement": True}, "min_agreement"),
        ({"min_agreement": float("nan")}, "min_agreement"),
        ({"min_judgments": 0}, "min_judgments"),
        ({"min_judgments": 2.5}, "min_judgments"),
        ({"drop_negligible": None}, "drop_negligible"),
        ({"keep_unsafe_chosen": "false"}, "keep_unsafe_chosen"),
        ({"margin": "medium"}, "margin"),
        ([1, 2], "spec"),
        ("{}", "spec"),
    ],
)
def test_malformed_specs_name_the_field(raw: Any, field: str) -> None:
    error = refused(raw)
    assert error.field == field
    assert error.as_dict()["error"]["fields"] == {field: [error.message]}
    assert error.status_code == 400


@pytest.mark.django_db
def test_unknown_batch_ids_are_refused_and_listed() -> None:
    batch = factories.BatchFactory()
    error = refused({"batches": [batch.pk, batch.pk + 1000]})
    assert error.field == "batches"
    assert str(batch.pk + 1000) in error.message
    assert error.code == "not_found"


@pytest.mark.parametrize(
    "raw",
    [
        {"aggregation": "majority"},
        {"min_agreement": 0.5},
        {"min_judgments": 2},
        {"drop_negligible": True},
        {"keep_unsafe_chosen": True},
        {"margin": "large"},
    ],
)
def test_judgments_raw_refuses_comparison_options(raw: dict[str, Any]) -> None:
    error = refused(raw, schema="judgments_raw")
    assert error.field == next(iter(raw))


def test_schema_and_format_are_checked() -> None:
    assert parse_schema("judgments_raw") == "judgments_raw"
    assert parse_format("parquet") == "parquet"
    with pytest.raises(DomainError) as caught:
        parse_schema("trl")
    assert caught.value.field == "schema"
    with pytest.raises(DomainError) as caught:
        parse_format("csv")
    assert caught.value.field == "format"
    with pytest.raises(DomainError) as caught:
        parse_export_spec({}, schema="csv")
    assert caught.value.field == "schema"
