"""The `exclude_flagged_annotators` filter: annotators flagged by a batch's quality report are left out of
that batch's exports (and only that batch's)."""

from __future__ import annotations

from typing import Any

import pytest

from annotate.core.errors import DomainError
from annotate.exports.spec import parse_export_spec
from annotate.quality.services import quality_recompute_batch
from tests.exports.conftest import Data


def test_flagged_annotators_are_left_out_when_asked(data: Data, export: Any) -> None:
    alice, bob, carol = data.user("alice"), data.user("bob"), data.user("carol")
    strict = data.batch(flag_min_agreement=0.9, flag_min_evidence=2)
    lenient = data.batch(flag_min_agreement=0.0, flag_min_evidence=2)
    for batch in (strict, lenient):
        for _ in range(2):
            item = data.item(batch)
            data.pairwise(item, alice, chosen=0)
            data.pairwise(item, bob, chosen=0)
            data.pairwise(item, carol, chosen=1)  # always against the others
    quality_recompute_batch(batch_id=strict.pk)
    quality_recompute_batch(batch_id=lenient.pk)

    everyone = export().rows
    assert len(everyone) == 12
    kept = export({"exclude_flagged_annotators": True}).rows
    # Carol is flagged in the strict batch only: her 2 judgments there go, the lenient batch keeps all 6.
    assert len(kept) == 10
    assert sorted((r["batch"], r["annotator"]) for r in everyone if r not in kept) == sorted(
        [(strict.pk, carol.pseudonym)] * 2
    )
    raw = export({"exclude_flagged_annotators": True}, schema="judgments_raw").rows
    assert len(raw) == 10


def test_a_bad_value_is_refused_naming_the_field(db: None) -> None:
    with pytest.raises(DomainError) as refused:
        parse_export_spec({"exclude_flagged_annotators": "yes"}, schema="trl_preference")
    assert refused.value.field == "exclude_flagged_annotators"
