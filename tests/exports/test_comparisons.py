"""What the comparison exports contain: pairwise rows, ranking pairs, margins, the safety rule, filters,
votes and majorities, pseudonyms, and the flat and raw schemas."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from annotate.exports.datasets import COLUMNS
from annotate.exports.models import ExportJob
from annotate.exports.services import export_build
from tests.exports.conftest import T0, Data

TRL_NAMES = [c.name for c in COLUMNS["trl_preference"]]


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def test_a_pairwise_judgment_becomes_one_trl_row(data: Data, export: Any) -> None:
    alice = data.user("alice")
    batch = data.batch(guidelines_version=3)
    conversation = [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke."},
    ]
    item = data.item(batch, conversation=conversation)
    r0, r1 = data.responses(item)
    judgment = data.pairwise(
        item, alice, chosen=1, strength="better", at=T0, shown_swapped=True, guidelines_version=3
    )

    rows = export().rows
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == TRL_NAMES
    assert row["id"] == f"j{judgment.pk}" == row["group_id"]
    assert row["prompt"] == conversation
    assert row["chosen"] == [{"role": "assistant", "content": r1.content}]
    assert row["rejected"] == [{"role": "assistant", "content": r0.content}]
    assert row["margin"] == pytest.approx(2 / 3)
    assert row["strength"] == "better"
    assert (row["judgment_id"], row["item_id"], row["batch"]) == (judgment.pk, item.pk, batch.pk)
    assert (row["track"], row["mode"], row["safety_bin"]) == ("helpfulness", "pairwise", None)
    assert row["annotator"] == alice.pseudonym
    assert row["annotator_kind"] == "human"
    assert (row["chosen_model"], row["rejected_model"]) == (r1.model_name, r0.model_name)
    assert (row["chosen_response_id"], row["rejected_response_id"]) == (r1.pk, r0.pk)
    # Slot 0 came from cfg-a (with a seed and a system prompt), slot 1 from cfg-b.
    assert row["rejected_sampling_config"] == "cfg-a"
    assert (row["rejected_temperature"], row["rejected_top_p"], row["rejected_max_tokens"]) == (0.2, 0.9, 256)
    assert (row["rejected_seed"], row["rejected_system_prompt"]) == (11, "Be terse.")
    assert row["chosen_sampling_config"] == "cfg-b"
    assert (row["chosen_seed"], row["chosen_system_prompt"]) == (None, None)
    assert row["position_chosen"] == 0  # shown swapped: slot 1 was on the left
    assert row["time_spent_ms"] == 4321
    assert row["guidelines_version"] == 3
    assert row["is_gold"] is False
    assert (row["votes"], row["agreement"]) == (None, None)
    assert row["created_at"] == "2026-03-01T12:00:00Z"


def test_the_system_prompt_of_a_sampling_config_stays_out_of_the_messages(data: Data, export: Any) -> None:
    item = data.item(data.batch())
    data.pairwise(item, data.user("alice"), chosen=0)
    row = export().rows[0]
    assert row["chosen_system_prompt"] == "Be terse."
    assert all(m["content"] != "Be terse." for m in row["prompt"] + row["chosen"])


STRENGTHS = ("significantly_better", "better", "slightly_better", "negligibly_better_or_unsure")
PRESETS = {"small": (1.0, 2 / 3, 1 / 3, 0.0), "large": (3.0, 2.0, 1.0, 0.0)}


@pytest.mark.parametrize(("preset", "values"), PRESETS.items())
def test_margins_follow_the_chosen_preset(
    data: Data, export: Any, preset: str, values: tuple[float, ...]
) -> None:
    expected = dict(zip(STRENGTHS, values, strict=True))
    alice = data.user("alice")
    batch = data.batch()
    for strength in expected:
        data.pairwise(data.item(batch), alice, strength=strength)
    rows = export({"margin": preset}).rows
    assert {row["strength"]: row["margin"] for row in rows} == pytest.approx(expected)
    assert all(isinstance(row["margin"], float) for row in rows)


def test_a_ranking_of_four_gives_six_pairs_best_first(data: Data, export: Any) -> None:
    batch = data.batch(k=4)
    item = data.item(batch)
    rs = data.responses(item)
    judgment = data.ranking(item, data.user("alice"), [2, 0, 3, 1], shown=[3, 1, 0, 2])

    rows = export().rows
    assert len(rows) == 6
    slot = {r.pk: r.slot for r in rs}
    pairs = [(slot[row["chosen_response_id"]], slot[row["rejected_response_id"]]) for row in rows]
    assert pairs == [(2, 0), (2, 3), (2, 1), (0, 3), (0, 1), (3, 1)]
    assert [row["strength"] for row in rows] == [
        "slightly_better", "better", "significantly_better", "slightly_better", "better", "slightly_better",
    ]  # fmt: skip
    assert [row["margin"] for row in rows] == pytest.approx([1 / 3, 2 / 3, 1.0, 1 / 3, 2 / 3, 1 / 3])
    assert {row["group_id"] for row in rows} == {f"j{judgment.pk}"}
    assert len({row["id"] for row in rows}) == 6
    assert all(row["mode"] == "ranking" and row["judgment_id"] == judgment.pk for row in rows)
    # Shown as slots [3, 1, 0, 2]: slot 2 was fourth (index 3), slot 0 third, slot 3 first.
    assert [row["position_chosen"] for row in rows] == [3, 3, 3, 2, 2, 0]
    first = rows[0]
    assert first["chosen"] == [{"role": "assistant", "content": rs[2].content}]
    assert first["rejected"] == [{"role": "assistant", "content": rs[0].content}]
    assert (first["chosen_sampling_config"], first["rejected_sampling_config"]) == (None, "cfg-a")
    assert list(first) == TRL_NAMES


def test_safety_bins_and_the_llama2_rule_for_pairwise(data: Data, export: Any) -> None:
    alice = data.user("alice")
    batch = data.batch(track="safety")
    cases = {
        "chosen_safe_other_unsafe": {0: "safe", 1: "unsafe"},
        "both_safe": {0: "safe", 1: "safe"},
        "both_unsafe": {0: "unsafe", 1: "unsafe"},
        "chosen_unsafe_other_safe": {0: "unsafe", 1: "safe"},
    }
    judgments = {
        name: data.pairwise(data.item(batch), alice, chosen=0, labels=labels)
        for name, labels in cases.items()
    }
    assert judgments["chosen_unsafe_other_safe"].flagged

    default = by_id(export().rows)
    assert sorted(row["safety_bin"] for row in default.values()) == [
        "both_safe", "both_unsafe", "chosen_safe_other_unsafe",
    ]  # fmt: skip
    assert f"j{judgments['chosen_unsafe_other_safe'].pk}" not in default

    kept = by_id(export({"keep_unsafe_chosen": True}).rows)
    assert kept[f"j{judgments['chosen_unsafe_other_safe'].pk}"]["safety_bin"] == "chosen_unsafe_other_safe"
    assert len(kept) == 4


def test_ranking_pairs_get_their_safety_bin_and_the_rule(data: Data, export: Any) -> None:
    batch = data.batch(track="safety", k=3)
    item = data.item(batch)
    # Best first: slot 1 (unsafe), slot 0 (safe), slot 2 (unsafe).
    data.ranking(item, data.user("alice"), [1, 0, 2], labels={0: "safe", 1: "unsafe", 2: "unsafe"})
    slot = {r.pk: r.slot for r in data.responses(item)}

    def pairs(rows: list[dict[str, Any]]) -> dict[tuple[int, int], str]:
        return {
            (slot[r["chosen_response_id"]], slot[r["rejected_response_id"]]): r["safety_bin"] for r in rows
        }

    assert pairs(export().rows) == {(1, 2): "both_unsafe", (0, 2): "chosen_safe_other_unsafe"}
    assert pairs(export({"keep_unsafe_chosen": True}).rows) == {
        (1, 0): "chosen_unsafe_other_safe",
        (1, 2): "both_unsafe",
        (0, 2): "chosen_safe_other_unsafe",
    }


def test_rows_come_in_judgment_order(data: Data, export: Any) -> None:
    alice, bob = data.user("alice"), data.user("bob")
    batch = data.batch()
    items = [data.item(batch) for _ in range(3)]
    made = [data.pairwise(items[2], alice), data.pairwise(items[0], bob), data.pairwise(items[1], alice)]
    assert [row["judgment_id"] for row in export().rows] == [j.pk for j in made]


# --- filters -------------------------------------------------------------------------------------------


def test_filter_by_batches_and_track(data: Data, export: Any) -> None:
    alice = data.user("alice")
    help_1, help_2, safety = data.batch(), data.batch(), data.batch(track="safety")
    j1 = data.pairwise(data.item(help_1), alice)
    j2 = data.pairwise(data.item(help_2), alice)
    j3 = data.pairwise(data.item(safety), alice, labels={0: "safe", 1: "safe"})

    def ids(spec: dict[str, Any]) -> set[int]:
        return {row["judgment_id"] for row in export(spec).rows}

    assert ids({}) == {j1.pk, j2.pk, j3.pk}
    assert ids({"batches": [help_1.pk]}) == {j1.pk}
    assert ids({"batches": [help_2.pk, safety.pk]}) == {j2.pk, j3.pk}
    assert ids({"track": "safety"}) == {j3.pk}
    assert ids({"track": "helpfulness", "batches": [help_2.pk, safety.pk]}) == {j2.pk}


def test_filter_by_time_range_from_inclusive_until_exclusive(data: Data, export: Any) -> None:
    alice = data.user("alice")
    batch = data.batch()
    early = data.pairwise(data.item(batch), alice, at=T0 - timedelta(days=1))
    on_the_dot = data.pairwise(data.item(batch), alice, at=T0)
    late = data.pairwise(data.item(batch), alice, at=T0 + timedelta(days=1))

    def ids(spec: dict[str, Any]) -> list[int]:
        return [row["judgment_id"] for row in export(spec).rows]

    assert ids({"created_from": "2026-03-01T12:00:00Z"}) == [on_the_dot.pk, late.pk]
    assert ids({"created_until": "2026-03-01T12:00:00Z"}) == [early.pk]
    assert ids({"created_from": "2026-03-01T13:00:00+01:00", "created_until": "2026-03-02T00:00:00Z"}) == [
        on_the_dot.pk
    ]


def test_gold_items_are_left_out_unless_asked_for(data: Data, export: Any) -> None:
    alice = data.user("alice")
    batch = data.batch()
    regular = data.pairwise(data.item(batch), alice)
    gold = data.pairwise(data.item(batch, is_gold=True), alice)
    assert [row["judgment_id"] for row in export().rows] == [regular.pk]
    rows = export({"include_gold": True}).rows
    assert [(row["judgment_id"], row["is_gold"]) for row in rows] == [(regular.pk, False), (gold.pk, True)]


def test_drop_negligible_leaves_out_unsure_pairwise_but_not_ranking_pairs(data: Data, export: Any) -> None:
    alice = data.user("alice")
    batch = data.batch()
    sure = data.pairwise(data.item(batch), alice, strength="slightly_better")
    unsure = data.pairwise(data.item(batch), alice, strength="negligibly_better_or_unsure")
    data.ranking(data.item(data.batch(k=2)), alice, [1, 0])
    assert {row["judgment_id"] for row in export().rows} >= {sure.pk, unsure.pk}
    rows = export({"drop_negligible": True}).rows
    assert unsure.pk not in {row["judgment_id"] for row in rows}
    assert {row["mode"] for row in rows} == {"pairwise", "ranking"}


def test_the_ai_field_chooses_humans_ai_judges_or_both(data: Data, export: Any) -> None:
    batch = data.batch()
    human = data.pairwise(data.item(batch), data.user("alice"))
    judge = data.user("judge-bot", kind="ai")
    ai = data.pairwise(data.item(batch), judge)

    def kinds(spec: dict[str, Any]) -> list[tuple[int, str]]:
        return [(row["judgment_id"], row["annotator_kind"]) for row in export(spec).rows]

    assert kinds({}) == [(human.pk, "human")]
    assert kinds({"ai": "only"}) == [(ai.pk, "ai")]
    assert kinds({"ai": "include"}) == [(human.pk, "human"), (ai.pk, "ai")]


def test_annotators_are_named_by_stable_pseudonyms_never_usernames(data: Data, export: Any) -> None:
    alice, bob = data.user("alice"), data.user("bob")
    batch = data.batch()
    data.pairwise(data.item(batch), alice)
    data.pairwise(data.item(batch), bob)
    first = export()
    second = export({}, "trl_preference", "parquet")
    names = [row["annotator"] for row in first.rows]
    assert names == [alice.pseudonym, bob.pseudonym] == [row["annotator"] for row in second.rows]
    assert all(name.startswith("ann_") for name in names)
    for user in (alice, bob):
        assert user.username.encode() not in first.raw
        assert f'"annotator":{user.pk},'.encode() not in first.raw


# --- votes, agreement, majority ---------------------------------------------------------------------------


def judged_items(data: Data) -> dict[str, Any]:
    """Item `clear`: 2 votes for slot 0 (better, significantly), 1 for slot 1. Item `tie`: 1 each.
    Item `single`: one vote."""
    users = [data.user(name) for name in ("alice", "bob", "carol")]
    batch = data.batch()
    clear, tie, single = data.item(batch), data.item(batch), data.item(batch)
    votes = {
        "clear": [
            data.pairwise(clear, users[0], chosen=0, strength="better", at=T0),
            data.pairwise(
                clear, users[1], chosen=0, strength="significantly_better", at=T0 + timedelta(hours=2)
            ),
            data.pairwise(clear, users[2], chosen=1, strength="slightly_better", at=T0 + timedelta(hours=1)),
        ],
        "tie": [data.pairwise(tie, users[0], chosen=0), data.pairwise(tie, users[1], chosen=1)],
        "single": [data.pairwise(single, users[2], chosen=1, strength="negligibly_better_or_unsure")],
    }
    return {"clear": clear, "tie": tie, "single": single, "votes": votes}


def test_majority_gives_one_row_per_item_and_drops_ties(data: Data, export: Any) -> None:
    made = judged_items(data)
    clear = made["clear"]
    r0, r1 = data.responses(clear)
    rows = export({"aggregation": "majority"}).rows
    assert [row["item_id"] for row in rows] == [clear.pk, made["single"].pk]
    row = rows[0]
    assert list(row) == TRL_NAMES
    assert row["id"] == f"i{clear.pk}:{r0.pk}>{r1.pk}"
    assert row["group_id"] == f"i{clear.pk}"
    assert (row["chosen_response_id"], row["rejected_response_id"]) == (r0.pk, r1.pk)
    assert row["strength"] == "better"  # lower median of better (2) and significantly better (3)
    assert row["margin"] == pytest.approx(2 / 3)
    assert (row["votes"], row["agreement"]) == (3, pytest.approx(2 / 3))
    assert (row["judgment_id"], row["annotator"], row["time_spent_ms"], row["position_chosen"]) == (None,) * 4
    assert row["created_at"] == "2026-03-01T14:00:00Z"  # the latest vote


def test_min_agreement_keeps_every_judgment_of_items_that_agree_enough(data: Data, export: Any) -> None:
    made = judged_items(data)
    rows = export({"min_agreement": 0.6}).rows
    clear_ids = [j.pk for j in made["votes"]["clear"]]
    single_id = made["votes"]["single"][0].pk
    assert [row["judgment_id"] for row in rows] == [*clear_ids, single_id]  # by item, then judgment
    assert {(row["votes"], round(row["agreement"], 3)) for row in rows} == {(3, 0.667), (1, 1.0)}
    assert [row["judgment_id"] for row in export({"min_agreement": 0.7}).rows] == [single_id]
    assert len(export({"min_agreement": 0.5}).rows) == 6  # the tie has agreement 0.5


def test_min_judgments_leaves_out_thinly_judged_items(data: Data, export: Any) -> None:
    made = judged_items(data)
    assert {row["item_id"] for row in export({"min_judgments": 2}).rows} == {made["clear"].pk, made["tie"].pk}
    majority = export({"min_judgments": 2, "aggregation": "majority"}).rows
    assert [row["item_id"] for row in majority] == [made["clear"].pk]


def test_majority_filters_apply_before_voting(data: Data, export: Any) -> None:
    made = judged_items(data)
    # Without the unsure single vote, that item has no comparison left to aggregate.
    rows = export({"aggregation": "majority", "drop_negligible": True}).rows
    assert [row["item_id"] for row in rows] == [made["clear"].pk]


def test_majority_over_rankings_counts_votes_per_response_pair(data: Data, export: Any) -> None:
    batch = data.batch(k=3)
    item = data.item(batch)
    rs = data.responses(item)
    data.ranking(item, data.user("alice"), [0, 1, 2])
    data.ranking(item, data.user("bob"), [0, 2, 1])
    data.ranking(item, data.user("carol"), [1, 0, 2])
    rows = export({"aggregation": "majority"}).rows
    slot = {r.pk: r.slot for r in rs}
    got = {
        (slot[r["chosen_response_id"]], slot[r["rejected_response_id"]]): (r["votes"], r["agreement"])
        for r in rows
    }
    assert got == {
        (0, 1): (3, pytest.approx(2 / 3)),
        (0, 2): (3, 1.0),
        (1, 2): (3, pytest.approx(2 / 3)),
    }


def test_majority_safety_labels_are_counted_per_response(data: Data, export: Any) -> None:
    alice, bob, carol = data.user("alice"), data.user("bob"), data.user("carol")
    batch = data.batch(track="safety")
    item = data.item(batch)
    data.pairwise(item, alice, chosen=0, labels={0: "safe", 1: "unsafe"})
    data.pairwise(item, bob, chosen=0, labels={0: "safe", 1: "safe"})
    data.pairwise(item, carol, chosen=0, labels={0: "unsafe", 1: "unsafe"})
    [row] = export({"aggregation": "majority"}).rows
    # Slot 0: safe, safe, unsafe -> safe. Slot 1: unsafe, safe, unsafe -> unsafe.
    assert row["safety_bin"] == "chosen_safe_other_unsafe"


# --- flat and raw ---------------------------------------------------------------------------------------


def test_pairwise_flat_has_plain_strings(data: Data, export: Any) -> None:
    batch = data.batch()
    multi = [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "Follow-up"},
    ]
    single_item, multi_item = data.item(batch), data.item(batch, conversation=multi)
    alice = data.user("alice")
    data.pairwise(single_item, alice, chosen=0)
    data.pairwise(multi_item, alice, chosen=1)
    single, follow_up = export({}, "pairwise_flat").rows
    assert list(single) == [c.name for c in COLUMNS["pairwise_flat"]]
    assert single["prompt"] == single_item.conversation[0]["content"]
    assert single["context"] == ""
    assert single["chosen"] == data.responses(single_item)[0].content
    assert single["rejected"] == data.responses(single_item)[1].content
    assert follow_up["prompt"] == "Follow-up"
    assert follow_up["context"] == "user: First question\n\nassistant: First answer"
    assert follow_up["chosen"] == data.responses(multi_item)[1].content
    assert follow_up["margin"] == pytest.approx(2 / 3)


def test_judgments_raw_has_every_judgment_skip_and_flag(data: Data, export: Any) -> None:
    alice, bob, carol = data.user("alice"), data.user("bob"), data.user("carol")
    safety = data.batch(track="safety")
    ranked = data.batch(k=3)
    pair_item, rank_item = data.item(safety), data.item(ranked)
    unsafe_choice = data.pairwise(pair_item, alice, chosen=0, labels={0: "unsafe", 1: "safe"})
    ranking = data.ranking(rank_item, alice, [2, 0, 1])
    skipped = data.skip(pair_item, bob, reason="Not my language.")
    flagged_skip = data.skip(rank_item, carol, reason="Broken.", flag="broken")

    rows = export({}, "judgments_raw").rows
    assert [row["assignment_id"] for row in rows] == sorted(
        [unsafe_choice.assignment_id, ranking.assignment_id, skipped.pk, flagged_skip.pk]
    )
    assert all(list(row) == [c.name for c in COLUMNS["judgments_raw"]] for row in rows)
    by_assignment = {row["assignment_id"]: row for row in rows}

    pair = by_assignment[unsafe_choice.assignment_id]
    r0, r1 = data.responses(pair_item)
    assert (pair["judgment_id"], pair["status"], pair["skipped"], pair["flagged"]) == (
        unsafe_choice.pk, "submitted", False, False,
    )  # fmt: skip
    assert pair["unsafe_choice"] is True
    assert pair["safety_bin"] == "chosen_unsafe_other_safe"
    assert (pair["chosen_response_id"], pair["rejected_response_id"], pair["strength"]) == (
        r0.pk,
        r1.pk,
        "better",
    )
    assert [(r["id"], r["slot"], r["safety_label"]) for r in pair["responses"]] == [
        (r0.pk, 0, "unsafe"), (r1.pk, 1, "safe"),
    ]  # fmt: skip
    assert pair["responses"][0]["sampling_config"] == "cfg-a"
    assert pair["annotator"] == alice.pseudonym
    assert pair["ranking"] is None

    rank = by_assignment[ranking.assignment_id]
    rs = data.responses(rank_item)
    assert rank["ranking"] == [rs[2].pk, rs[0].pk, rs[1].pk]
    assert rank["positions"] == [r.pk for r in rs]
    assert all(r["safety_label"] is None for r in rank["responses"])
    assert rank["unsafe_choice"] is False

    skip = by_assignment[skipped.pk]
    assert (skip["judgment_id"], skip["status"], skip["skipped"], skip["skip_reason"]) == (
        None, "skipped", True, "Not my language.",
    )  # fmt: skip
    assert (skip["flagged"], skip["flag"], skip["unsafe_choice"], skip["rationale"]) == (
        False,
        None,
        None,
        None,
    )
    flag = by_assignment[flagged_skip.pk]
    assert (flag["flagged"], flag["flag"], flag["skipped"]) == (True, "broken", True)


def test_conversations_are_trimmed_to_role_and_content(data: Data, export: Any) -> None:
    item = data.item(
        data.batch(), conversation=[{"role": "user", "content": "Hi", "name": "x", "lang": "en"}]
    )
    data.pairwise(item, data.user("alice"))
    assert export().rows[0]["prompt"] == [{"role": "user", "content": "Hi"}]


def test_a_malformed_conversation_fails_the_job_with_its_reason(data: Data) -> None:
    item = data.item(data.batch(), conversation=[{"role": "user", "content": ["an", "image"]}])
    data.pairwise(item, data.user("alice"))
    job = ExportJob.objects.create(spec={}, schema="trl_preference", format="jsonl")
    failed = export_build(job.pk)
    assert failed is not None
    assert failed.status == "failed"
    assert f"Item {item.pk}" in failed.error
    assert failed.finished_at is not None
