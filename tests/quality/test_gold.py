"""Gold items: marked by admins with a checked expected answer, interleaved at the batch's rate, and never
shown to annotators as gold."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotate.assignments.services import assignment_claim_next, assignment_skip
from annotate.batches.models import Item
from annotate.batches.services import NewItem, items_add
from annotate.core.errors import DomainError
from annotate.quality.services import gold_expected_parse, item_set_gold
from tests import factories

pytestmark = pytest.mark.django_db


def test_expected_answers_are_checked_against_the_batch() -> None:
    pairwise = factories.BatchFactory()
    ranking = factories.BatchFactory(mode="ranking", responses_per_item=3)
    assert gold_expected_parse(batch=pairwise, raw={"slot": 1, "min_strength": "better"}) == {
        "slot": 1,
        "min_strength": "better",
    }
    assert gold_expected_parse(batch=ranking, raw={"ranking": [2, 0, 1]}) == {"ranking": [2, 0, 1]}
    for batch, raw, field in [
        (pairwise, {"slot": 2}, "gold_slot"),
        (pairwise, {"slot": True}, "gold_slot"),
        (pairwise, {"slot": 0, "min_strength": "huge"}, "gold_min_strength"),
        (pairwise, {"slot": 0, "extra": 1}, "gold_expected"),
        (ranking, {"ranking": [0, 1]}, "gold_ranking"),
        (ranking, {"ranking": [0, 0, 1]}, "gold_ranking"),
        (pairwise, "slot 0", "gold_expected"),
    ]:
        with pytest.raises(DomainError) as refused:
            gold_expected_parse(batch=batch, raw=raw)
        assert refused.value.field == field


def test_item_set_gold_marks_and_unmarks() -> None:
    batch = factories.ready_batch(items=1)
    item = Item.objects.get(batch=batch)
    item_set_gold(item_id=item.pk, expected={"slot": 0, "min_strength": None})
    item.refresh_from_db()
    assert item.is_gold and item.gold_expected == {"slot": 0, "min_strength": None}
    item_set_gold(item_id=item.pk, expected=None)
    item.refresh_from_db()
    assert not item.is_gold and item.gold_expected is None


def test_admins_mark_gold_on_the_item_form_with_errors_named(staff_client: Client) -> None:
    batch = factories.ready_batch(items=1)
    item = Item.objects.get(batch=batch)
    url = reverse("admin:batches_item_change", args=[item.pk])
    page = staff_client.get(url)
    assert page.status_code == 200 and "gold_slot" in page.content.decode()
    form = {
        "batch": batch.pk,
        "conversation": '[{"role": "user", "content": "Hi?"}]',
        "status": "ready",
        "wanted": 1,
        "is_gold": "on",
        "metadata": "{}",
        "source": "imported",
        "external_id": "",
        "turn_index": 0,
        "gold_slot": "5",
        "gold_min_strength": "better",
        "gold_ranking": "",
        "responses-TOTAL_FORMS": "2",
        "responses-INITIAL_FORMS": "2",
        "responses-MIN_NUM_FORMS": "0",
        "responses-MAX_NUM_FORMS": "1000",
    }
    for i, response in enumerate(item.responses.order_by("slot")):
        form[f"responses-{i}-id"] = str(response.pk)
        form[f"responses-{i}-item"] = str(item.pk)
    bad = staff_client.post(url, form)
    assert bad.status_code == 200 and "Say which response is better" in bad.content.decode()
    item.refresh_from_db()
    assert not item.is_gold
    form["gold_slot"] = "1"
    good = staff_client.post(url, form)
    assert good.status_code == 302, good.content.decode()[:2000]
    item.refresh_from_db()
    assert item.is_gold and item.gold_expected == {"slot": 1, "min_strength": "better"}


def test_gold_is_interleaved_at_the_batch_rate_over_1000_claims() -> None:
    batch = factories.BatchFactory(overlap=1, gold_rate=0.25)
    new = [
        NewItem(conversation=factories.conversation(n), responses=[("m0", "a"), ("m1", "b")])
        for n in range(300)
    ]
    new += [
        NewItem(
            conversation=factories.conversation(1000 + n),
            responses=[("m0", "a"), ("m1", "b")],
            is_gold=True,
            gold_expected={"slot": 0, "min_strength": None},
        )
        for n in range(100)
    ]
    assert items_add(batch=batch, new_items=new).created == 400
    annotators = [factories.quick_annotator(f"gold{i}") for i in range(4)]
    gold = 0
    for claim in range(1000):
        user = annotators[claim % 4]
        assignment = assignment_claim_next(annotator=user, batch_id=batch.pk)
        assert assignment is not None
        gold += assignment.item.is_gold
        assignment_skip(annotator=user, assignment_id=assignment.pk, reason="measuring the gold rate")
    # Binomial(1000, 0.25): sd 13.7; +-4 sd.
    assert 195 <= gold <= 305, gold


def test_the_item_page_never_reveals_gold(annotator_client: Client, annotator: Any) -> None:
    batch = factories.BatchFactory(gold_rate=1.0, guidelines="")
    item = factories.ready_item(batch, 1, is_gold=True, gold_expected={"slot": 1, "min_strength": "better"})
    page = annotator_client.get(reverse("workbench:batch", args=[batch.pk]), HTTP_X_REQUESTED_WITH="fetch")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Question {1}" in html  # it is the gold item's page
    assert "gold" not in html.lower()
    assert "min_strength" not in html and "expected" not in html.lower()
    full = annotator_client.get(reverse("workbench:batch", args=[batch.pk])).content.decode()
    assert "gold" not in full.lower()
    # The API shows an annotator their assignment without the item's gold fields.
    assignment = item.assignments.get()
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(annotator)
    body = api.get(f"/api/v1/assignments/{assignment.pk}/").content.decode()
    assert "gold" not in body.lower()
