"""AI judgments in exports: left out by default, a `source` column naming the judge version, the `ai` filter,
and the mix stated on the dataset card."""

from __future__ import annotations

from typing import Any

import pytest

from annotate.batches.models import Item
from annotate.judges import services
from annotate.judges.models import Judge
from tests.api.conftest import make_token, token_client
from tests.exports.conftest import _media, run_export  # noqa: F401 - the exports' media folder fixture
from tests.judges.conftest import drive, human_judges, varied_batch

pytestmark = pytest.mark.django_db(transaction=True)


def test_exports_leave_ai_judgments_out_by_default_and_name_their_source(
    judge: Judge, enqueued: list[int], annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotate.exports import tasks

    monkeypatch.setattr(tasks.build_export, "delay", lambda job_id: None)
    batch = varied_batch(2)
    first = Item.objects.filter(batch=batch).order_by("pk").first()
    human = human_judges(first, annotator, pick_slot=0)
    run = services.judge_run_start(judge_id=judge.pk, batch_id=batch.pk)
    drive(run)

    default = run_export()
    assert [(r["judgment_id"], r["source"]) for r in default.rows] == [(human.pk, "human")]
    assert "human only: human 1 (100.0%)" in default.storage_file("README.md").decode()

    both = run_export({"ai": "include"})
    assert sorted(r["source"] for r in both.rows) == ["ai:judgy@v1", "ai:judgy@v1", "human"]
    card = both.storage_file("README.md").decode()
    assert "humans and AI judges: ai:judgy@v1 2 (66.7%), human 1 (33.3%)" in card

    only = run_export({"ai": "only"}, schema="judgments_raw")
    assert {r["source"] for r in only.rows} == {"ai:judgy@v1"} and len(only.rows) == 2
    assert all(r["annotator_kind"] == "ai" for r in only.rows)

    majority = run_export({"ai": "include", "aggregation": "majority"})
    # Item 1: the human and the judge disagree (a tie, no majority row); item 2 has the judge's vote only.
    assert [(r["item_id"], r["source"]) for r in majority.rows] == [(first.pk + 1, "ai:judgy@v1")]


def test_a_bad_ai_value_is_a_400_naming_the_field(exporter: Any) -> None:
    api = token_client(make_token(exporter))
    response = api.post(
        "/api/v1/exports/",
        {"schema": "trl_preference", "format": "jsonl", "spec": {"ai": "sometimes"}},
        format="json",
    )
    assert response.status_code == 400 and "ai" in response.json()["error"]["fields"]
    legacy = api.post(
        "/api/v1/exports/",
        {"schema": "trl_preference", "format": "jsonl", "spec": {"source": "all"}},
        format="json",
    )
    assert legacy.status_code == 400 and "source" in legacy.json()["error"]["fields"]
