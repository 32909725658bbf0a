"""Prompt import: the JSONL format, all-or-nothing refusal by line, bounded reading, the admin page."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from annotate.batches import imports
from annotate.batches.imports import ImportReport, LineReader, RowError, batch_import_prompts
from annotate.batches.models import (
    Batch,
    BatchStatus,
    Item,
    ItemSource,
    ItemStatus,
    PromptSource,
    Response,
    ResponseStatus,
    conversation_hash,
)
from annotate.core.choices import Mode
from annotate.core.errors import DomainError
from tests import factories

pytestmark = pytest.mark.django_db

TWO = [{"model": "m-a", "content": "Answer A"}, {"model": "m-b", "content": "Answer B"}]


def jsonl(*rows: object) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows)


def run(batch: Batch, data: bytes | Any, user: Any = None) -> ImportReport:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return batch_import_prompts(batch_id=batch.pk, stream=stream, user=user)


def draft(**kwargs: Any) -> Batch:
    return factories.BatchFactory(status=BatchStatus.DRAFT, **kwargs)


def prompts(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"prompt": f"Prompt number {i}"} for i in range(start, start + n)]


@pytest.fixture(params=["copy", "orm"])
def insert_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test through the COPY path (PostgreSQL) and through the portable items_add path."""
    if request.param == "copy" and connection.vendor != "postgresql":
        pytest.skip("the COPY path needs PostgreSQL")
    if request.param == "orm":
        # Only the import module's view of the engine: everything else keeps talking to the real one.
        monkeypatch.setattr(imports, "connection", SimpleNamespace(vendor="sqlite"))
    return str(request.param)


# --------------------------------------------------------------------------------------------------
# A good file
# --------------------------------------------------------------------------------------------------


def test_a_good_file_imports_every_kind_of_row(batch_admin: Any, insert_path: str) -> None:
    batch = draft(overlap=3)
    multi_turn = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    # Keys in another order than role, content: the stored conversation and its hash do not depend on it.
    reordered = [{"content": "First question", "role": "user"}]
    data = jsonl(
        {"prompt": "Single prompt", "id": "p-1"},
        {"messages": multi_turn, "metadata": {"source": "forum", "tags": ["a", "b"]}, "id": 42},
        {"messages": reordered, "responses": TWO},
        {"prompt": "Gold one", "responses": TWO, "gold": {"preferred": 1, "min_strength": "better"}},
        {"prompt": "Gold, no strength", "responses": TWO, "gold": {"preferred": 0}},
    )

    report = run(batch, data, user=batch_admin)

    assert report == ImportReport(rows=5, created=5, duplicates=0, blank_lines=0)
    items = list(Item.objects.filter(batch=batch).order_by("pk"))
    assert [i.external_id for i in items] == ["p-1", "42", "", "", ""]
    assert items[0].conversation == [{"role": "user", "content": "Single prompt"}]
    assert items[1].conversation == multi_turn
    assert items[1].metadata == {"source": "forum", "tags": ["a", "b"]}
    assert items[2].conversation == [{"role": "user", "content": "First question"}]
    for item in items:
        assert item.content_hash == conversation_hash(item.conversation)
        assert item.wanted == 3 and item.taken == 0
        assert item.source == ItemSource.IMPORTED
        assert item.created_by_id == batch_admin.pk
    assert [i.status for i in items] == ["pending", "pending", "ready", "ready", "ready"]
    assert [i.is_gold for i in items] == [False, False, False, True, True]
    assert items[3].gold_expected == {"slot": 1, "min_strength": "better"}
    assert items[4].gold_expected == {"slot": 0, "min_strength": None}
    assert items[0].gold_expected is None and items[0].metadata == {}

    responses = list(Response.objects.filter(item=items[2]).order_by("slot"))
    assert [(r.slot, r.model_name, r.content) for r in responses] == [
        (0, "m-a", "Answer A"),
        (1, "m-b", "Answer B"),
    ]
    assert all(r.status == ResponseStatus.OK and r.generated_at is not None for r in responses)
    assert len({r.request_id for r in responses}) == 2
    assert not Response.objects.filter(item__in=items[:2]).exists()


TRICKY = 'back\\slash \\N tab\there new\nline cr\r "quotes" \\u0041 é 漢字 😀 \u2028 end'


def test_text_with_escapes_and_unicode_comes_back_exactly(insert_path: str) -> None:
    batch = draft()
    messages = [{"role": "system", "content": TRICKY}, {"role": "user", "content": TRICKY + "?"}]
    row = {
        "messages": messages,
        "responses": [{"model": "m\\1\t", "content": TRICKY}, {"model": "m2", "content": "\\"}],
        "metadata": {TRICKY: [TRICKY, 1.5, None, True, {"deep": "\\\t\n"}]},
        "id": "id\\with\ttab",
        "gold": {"preferred": 0},
    }
    assert run(batch, jsonl(row)).created == 1
    item = Item.objects.get(batch=batch)
    assert item.conversation == messages
    assert item.content_hash == conversation_hash(messages)
    assert item.metadata == row["metadata"]
    assert item.external_id == "id\\with\ttab"
    responses = list(item.responses.order_by("slot"))
    assert [(r.model_name, r.content) for r in responses] == [("m\\1\t", TRICKY), ("m2", "\\")]
    assert all(
        r.request_id.version == 4 and r.request_id.variant == "specified in RFC 4122" for r in responses
    )


def test_a_ranking_batch_takes_k_responses_and_a_ranking_as_gold(insert_path: str) -> None:
    batch = draft(mode=Mode.RANKING, responses_per_item=4)
    four = [{"model": f"m{i}", "content": f"Answer {i}"} for i in range(4)]
    report = run(batch, jsonl({"prompt": "Rank these", "responses": four, "gold": {"ranking": [2, 0, 3, 1]}}))
    assert not report.refused and report.created == 1
    item = Item.objects.get(batch=batch)
    assert item.status == ItemStatus.READY and item.gold_expected == {"ranking": [2, 0, 3, 1]}
    assert item.responses.count() == 4


def test_the_copy_columns_are_every_column_of_the_tables() -> None:
    # A column added to Item or Response without a database default would break the COPY path silently.
    assert set(imports.ITEM_COPY_COLUMNS) == {f.column for f in Item._meta.concrete_fields}
    # Columns with a database default (touched_at: now()) may be left to it.
    with_db_default = {f.column for f in Response._meta.concrete_fields if f.has_db_default()}
    assert (
        set(imports.RESPONSE_COPY_COLUMNS)
        == {f.column for f in Response._meta.concrete_fields} - {"id"} - with_db_default
    )


def test_an_open_batch_takes_complete_rows_which_are_ready_at_once() -> None:
    batch = factories.BatchFactory(status=BatchStatus.OPEN)
    report = run(batch, jsonl({"prompt": "More work", "responses": TWO}))
    assert report.created == 1
    assert Item.objects.get(batch=batch).status == ItemStatus.READY


def test_an_open_batch_refuses_rows_without_responses_as_nothing_would_generate_them() -> None:
    batch = factories.BatchFactory(status=BatchStatus.PAUSED)
    report = run(batch, jsonl({"prompt": "With", "responses": TWO}, {"prompt": "Without"}))
    assert report.refused
    assert report.errors == [RowError(2, "responses", report.errors[0].message)]
    assert "only a draft batch generates" in report.errors[0].message
    assert not Item.objects.filter(batch=batch).exists()


# --------------------------------------------------------------------------------------------------
# All or nothing
# --------------------------------------------------------------------------------------------------


def test_three_bad_rows_among_a_thousand_refuse_the_whole_file(
    monkeypatch: pytest.MonkeyPatch, insert_path: str
) -> None:
    monkeypatch.setattr(imports, "CHUNK_ROWS", 100)  # so good chunks were written before the bad rows
    batch = draft()
    factories.ready_item(batch, 9999)
    rows: list[object] = list(prompts(1000))
    rows[499] = {"prompt": ""}
    rows[700] = {"messages": [{"role": "assistant", "content": "I start?"}]}
    rows[999] = b'{"prompt": "unterminated'
    before = (Item.objects.count(), Response.objects.count())

    report = run(batch, jsonl(*rows))

    assert report.refused and report.created == 0 and report.rows == 1000
    assert [(e.line, e.field) for e in report.errors] == [
        (500, "prompt"),
        (701, "messages[0].role"),
        (1000, "row"),
    ]
    assert "must not be empty" in report.errors[0].message
    assert "must be user" in report.errors[1].message
    assert "not valid JSON" in report.errors[2].message
    assert report.errors_total == 3
    assert (Item.objects.count(), Response.objects.count()) == before


def test_the_report_lists_the_first_hundred_errors_and_counts_them_all() -> None:
    batch = draft()
    report = run(batch, jsonl(*[{"prompt": 1}] * 150))
    assert report.refused and report.errors_total == 150
    assert len(report.errors) == imports.MAX_REPORTED_ERRORS == 100
    assert [e.line for e in report.errors] == list(range(1, 101))


def test_an_empty_file_is_refused() -> None:
    report = run(draft(), b"\n  \n")
    assert report.refused and report.blank_lines == 2
    assert report.errors == [RowError(0, "file", "has no rows.")]


# --------------------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------------------


def test_duplicates_in_the_file_and_in_the_batch_are_skipped_and_counted(
    monkeypatch: pytest.MonkeyPatch, insert_path: str
) -> None:
    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)  # duplicates across chunks, not only within one
    batch = draft()
    existing = factories.ready_item(batch, 1, conversation=[{"role": "user", "content": "Already here"}])
    same_as_messages = {"messages": [{"role": "user", "content": "Prompt number 0"}]}
    rows = [*prompts(5), {"prompt": "Already here"}, *prompts(2), same_as_messages, {"prompt": "New"}]

    report = run(batch, jsonl(*rows))

    assert (report.rows, report.created, report.duplicates) == (10, 6, 4)
    assert Item.objects.filter(batch=batch).count() == 7
    assert Item.objects.filter(batch=batch, content_hash=existing.content_hash).count() == 1


def test_the_same_prompt_in_another_batch_is_not_a_duplicate(insert_path: str) -> None:
    first, second = draft(), draft()
    assert run(first, jsonl(*prompts(3))).created == 3
    assert run(second, jsonl(*prompts(3))).created == 3


# --------------------------------------------------------------------------------------------------
# Reading: sizes, encodings, line endings
# --------------------------------------------------------------------------------------------------


def _chunks(*parts: bytes, size: int) -> Iterator[bytes]:
    for part in parts:
        for start in range(0, len(part), size):
            yield part[start : start + size]


def test_a_huge_row_is_refused_by_its_size_without_being_parsed(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_MAX_ROW_BYTES = 1_000_000
    parsed: list[int] = []
    real_parse = imports.parse_row
    monkeypatch.setattr(
        imports, "parse_row", lambda raw, rules: parsed.append(len(raw)) or real_parse(raw, rules)
    )
    huge = orjson.dumps({"prompt": "x" * 5_000_000})
    batch = draft()

    report = run(batch, _chunks(jsonl(*prompts(2)), huge + b"\n", jsonl(*prompts(2, start=2)), size=65_536))

    assert report.refused and report.rows == 5
    assert report.errors == [RowError(3, "row", "is longer than 1,000,000 bytes (IMPORT_MAX_ROW_BYTES).")]
    assert len(parsed) == 4 and max(parsed) < 100
    assert not Item.objects.filter(batch=batch).exists()


def test_the_reader_never_holds_more_than_the_limit_plus_one_chunk() -> None:
    limit, chunk = 1_000_000, 65_536
    huge_line = b"x" * 5_000_000

    def stream() -> Iterator[bytes]:
        yield b"first\n"
        for _ in range(len(huge_line) // chunk):  # made on the fly: the test itself never holds the line
            yield b"x" * chunk
        yield b"\nlast"

    tracemalloc.start()
    try:
        reader = LineReader(stream(), limit)
        lines = list(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [b"first", None, b"last"]
    assert reader.peak_held <= limit + 1 + chunk
    assert peak < 3 * limit  # the line is 5 MB; the reader's buffer stays near 1 MB


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 4096])
def test_lines_come_out_the_same_whatever_the_chunk_boundaries(size: int) -> None:
    data = b'{"a": 1}\r\n\r\n  \nsecond line\nx\r\n' + b"y" * 40 + b"\n" + b"z" * 41 + b"\nlast"
    lines = list(LineReader(_chunks(data, size=size), max_bytes=40))
    assert lines == [b'{"a": 1}', b"", b"  ", b"second line", b"x", b"y" * 40, None, b"last"]


def test_a_line_exactly_at_the_limit_passes_and_one_byte_more_does_not() -> None:
    for ending in (b"\n", b"\r\n"):
        data = b"a" * 10 + ending + b"b" * 11 + ending
        assert list(LineReader(_chunks(data, size=3), max_bytes=10)) == [b"a" * 10, None]


def test_bom_crlf_blank_lines_and_a_last_line_without_newline_are_handled(insert_path: str) -> None:
    batch = draft()
    data = b"\xef\xbb\xbf" + b'{"prompt": "one"}\r\n\r\n   \r\n{"prompt": "two"}\r\n\n{"prompt": "three"}'
    report = run(batch, data)
    assert (report.refused, report.rows, report.created, report.blank_lines) == (False, 3, 3, 3)
    assert sorted(i.conversation[0]["content"] for i in Item.objects.filter(batch=batch)) == [
        "one",
        "three",
        "two",
    ]


def test_invalid_utf8_is_an_error_of_its_line() -> None:
    batch = draft()
    report = run(batch, jsonl({"prompt": "ok"}, b'{"prompt": "caf\xe9"}', {"prompt": "ok 2"}))
    assert report.refused
    assert [(e.line, e.field) for e in report.errors] == [(2, "row")]
    assert "not valid UTF-8" in report.errors[0].message


def test_a_bom_after_the_first_line_is_not_stripped() -> None:
    report = run(draft(), jsonl({"prompt": "ok"}, b'\xef\xbb\xbf{"prompt": "no"}'))
    assert [(e.line, e.field) for e in report.errors] == [(2, "row")]


@pytest.mark.parametrize("kind", ["file", "iterable", "uploaded", "temporary_upload"])
def test_every_kind_of_stream_is_read(kind: str, tmp_path: Path) -> None:
    data = jsonl(*prompts(3))
    stream: Any
    if kind == "file":
        path = tmp_path / "p.jsonl"
        path.write_bytes(data)
        stream = path.open("rb")
    elif kind == "iterable":
        stream = [data[:5], data[5:]]
    elif kind == "uploaded":
        stream = SimpleUploadedFile("p.jsonl", data)
    else:
        stream = TemporaryUploadedFile("p.jsonl", "application/jsonl", len(data), None)
        stream.write(data)
        stream.seek(0)
    batch = draft()
    try:
        report = batch_import_prompts(batch_id=batch.pk, stream=stream, user=None)
    finally:
        if hasattr(stream, "close"):
            stream.close()
    assert report.created == 3


def test_a_text_stream_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="binary"):
        batch_import_prompts(batch_id=draft().pk, stream=io.StringIO('{"prompt": "x"}\n'), user=None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Validation rules: one bad row each
# --------------------------------------------------------------------------------------------------

U = {"role": "user", "content": "Question"}
A = {"role": "assistant", "content": "Answer"}
S = {"role": "system", "content": "Rules"}

BAD_ROWS: list[tuple[str, object, str, str]] = [
    ("not json", b"{nope", "row", "not valid JSON"),
    ("not an object", [1, 2], "row", "must be a JSON object"),
    ("a string", "hello", "row", "must be a JSON object"),
    ("unknown key", {"prompt": "x", "prompts": "y"}, "prompts", "is not a known key"),
    ("neither prompt nor messages", {"id": "x"}, "row", "exactly one of prompt and messages"),
    (
        "both prompt and messages",
        {"prompt": "x", "messages": [U]},
        "row",
        "exactly one of prompt and messages",
    ),
    ("prompt not a string", {"prompt": 5}, "prompt", "must be a string"),
    ("prompt empty", {"prompt": ""}, "prompt", "must not be empty"),
    ("prompt blank", {"prompt": " \n\t"}, "prompt", "must not be empty"),
    ("prompt null", {"prompt": None}, "prompt", "must be a string"),
    ("prompt with NUL", {"prompt": "a\u0000b"}, "prompt", "NUL"),
    ("prompt too long", {"prompt": "x" * 1001}, "prompt", "is 1,001 characters long; the limit is 1,000"),
    ("messages not a list", {"messages": "hi"}, "messages", "must be a list"),
    ("messages empty", {"messages": []}, "messages", "must not be empty"),
    ("too many messages", {"messages": [U, A] * 5 + [U]}, "messages", "has 11 messages; the limit is 10"),
    ("message not an object", {"messages": ["hi"]}, "messages[0]", "must be an object"),
    ("message unknown key", {"messages": [{**U, "name": "bob"}]}, "messages[0].name", "is not a known key"),
    ("message without content", {"messages": [{"role": "user"}]}, "messages[0].content", "is required"),
    ("message without role", {"messages": [{"content": "x"}]}, "messages[0].role", "is required"),
    ("unknown role", {"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "must be one of"),
    (
        "role not a string",
        {"messages": [{"role": ["user"], "content": "x"}]},
        "messages[0].role",
        "must be one",
    ),
    (
        "content not a string",
        {"messages": [{"role": "user", "content": ["x"]}]},
        "messages[0].content",
        "string",
    ),
    ("content empty", {"messages": [S, {"role": "user", "content": ""}]}, "messages[1].content", "empty"),
    ("starts with the assistant", {"messages": [A, U]}, "messages[0].role", "must be user"),
    ("system then assistant", {"messages": [S, A, U]}, "messages[1].role", "must be user"),
    ("two users in a row", {"messages": [U, U]}, "messages[1].role", "must be assistant"),
    ("two assistants in a row", {"messages": [U, A, A, U]}, "messages[2].role", "must be user"),
    ("system not first", {"messages": [U, A, S, U]}, "messages[2].role", "only be the first"),
    ("two system messages", {"messages": [S, S, U]}, "messages[1].role", "only be the first"),
    ("last turn the assistant's", {"messages": [U, A]}, "messages", "last message must be the user's"),
    ("only a system message", {"messages": [S]}, "messages", "last message must be the user's"),
    ("responses not a list", {"prompt": "x", "responses": "r"}, "responses", "must be a list"),
    ("responses null", {"prompt": "x", "responses": None}, "responses", "must be a list"),
    ("too few responses (wrong K)", {"prompt": "x", "responses": TWO[:1]}, "responses", "exactly 2 per item"),
    (
        "too many responses (wrong K)",
        {"prompt": "x", "responses": [*TWO, *TWO]},
        "responses",
        "has 4 response",
    ),
    ("response not an object", {"prompt": "x", "responses": ["a", "b"]}, "responses[0]", "must be an object"),
    (
        "response unknown key",
        {"prompt": "x", "responses": [TWO[0], {**TWO[1], "score": 1}]},
        "responses[1].score",
        "is not a known key",
    ),
    (
        "response without model",
        {"prompt": "x", "responses": [TWO[0], {"content": "c"}]},
        "responses[1].model",
        "is required",
    ),
    (
        "response model empty",
        {"prompt": "x", "responses": [{"model": "", "content": "c"}, TWO[1]]},
        "responses[0].model",
        "must not be empty",
    ),
    (
        "response content empty",
        {"prompt": "x", "responses": [TWO[0], {"model": "m", "content": ""}]},
        "responses[1].content",
        "must not be empty",
    ),
    (
        "response model too long",
        {"prompt": "x", "responses": [TWO[0], {"model": "m" * 201, "content": "c"}]},
        "responses[1].model",
        "the limit is 200",
    ),
    (
        "response content too long",
        {"prompt": "x", "responses": [TWO[0], {"model": "m", "content": "c" * 1001}]},
        "responses[1].content",
        "the limit is 1,000",
    ),
    ("metadata not an object", {"prompt": "x", "metadata": [1]}, "metadata", "must be an object"),
    ("metadata too big", {"prompt": "x", "metadata": {"k": "v" * 600}}, "metadata", "the limit is 512"),
    ("metadata with NUL", {"prompt": "x", "metadata": {"k": "a\u0000"}}, "metadata", "NUL"),
    (
        "gold without responses",
        {"prompt": "x", "gold": {"preferred": 0}},
        "gold",
        "needs the row's responses",
    ),
    ("gold not an object", {"prompt": "x", "responses": TWO, "gold": 0}, "gold", "must be an object"),
    (
        "gold without preferred",
        {"prompt": "x", "responses": TWO, "gold": {}},
        "gold.preferred",
        "is required",
    ),
    (
        "gold preferred out of range",
        {"prompt": "x", "responses": TWO, "gold": {"preferred": 2}},
        "gold.preferred",
        "from 0 to 1",
    ),
    (
        "gold preferred a bool",
        {"prompt": "x", "responses": TWO, "gold": {"preferred": True}},
        "gold.preferred",
        "integer",
    ),
    (
        "gold strength unknown",
        {"prompt": "x", "responses": TWO, "gold": {"preferred": 0, "min_strength": "much"}},
        "gold.min_strength",
        "must be one of significantly_better",
    ),
    (
        "gold ranking in a pairwise batch",
        {"prompt": "x", "responses": TWO, "gold": {"ranking": [0, 1]}},
        "gold.ranking",
        "is not a known key",
    ),
    ("id a float", {"prompt": "x", "id": 1.5}, "id", "string or an integer"),
    ("id a bool", {"prompt": "x", "id": True}, "id", "string or an integer"),
    ("id empty", {"prompt": "x", "id": ""}, "id", "must not be empty"),
    ("id too long", {"prompt": "x", "id": "i" * 201}, "id", "the limit is 200"),
]


@pytest.mark.parametrize(
    ("row", "field", "fragment"), [b[1:] for b in BAD_ROWS], ids=[b[0] for b in BAD_ROWS]
)
def test_each_rule_refuses_a_bad_row_with_its_field_and_reason(
    settings: Any, row: object, field: str, fragment: str
) -> None:
    settings.IMPORT_MAX_MESSAGES = 10
    settings.IMPORT_MAX_CONTENT_CHARS = 1000
    settings.IMPORT_MAX_METADATA_BYTES = 512
    batch = draft()
    report = run(batch, jsonl({"prompt": "A good row"}, row, {"prompt": "Another good row"}))
    assert report.refused and report.errors_total == 1
    error = report.errors[0]
    assert (error.line, error.field) == (2, field), error
    assert fragment in error.message
    assert not Item.objects.filter(batch=batch).exists()


BAD_RANKING_GOLD = [
    ({"ranking": [0, 1]}, "all 3 response indices"),
    ({"ranking": [0, 0, 1]}, "each response index from 0 to 2 once"),
    ({"ranking": [0, 1, 3]}, "from 0 to 2"),
    ({"ranking": "012"}, "all 3 response indices"),
    ({"preferred": 0}, "is not a known key"),
]


@pytest.mark.parametrize(("gold", "fragment"), BAD_RANKING_GOLD)
def test_a_ranking_gold_must_be_a_permutation_of_the_responses(gold: object, fragment: str) -> None:
    batch = draft(mode=Mode.RANKING, responses_per_item=3)
    three = [{"model": f"m{i}", "content": f"Answer {i}"} for i in range(3)]
    report = run(batch, jsonl({"prompt": "x", "responses": three, "gold": gold}))
    assert report.refused
    assert report.errors[0].field.startswith("gold") and fragment in report.errors[0].message


def test_a_good_row_at_every_limit_passes(settings: Any) -> None:
    settings.IMPORT_MAX_MESSAGES = 3
    settings.IMPORT_MAX_CONTENT_CHARS = 10
    batch = draft()
    messages = [{"role": "user", "content": "u" * 10}, {"role": "assistant", "content": "a"}, U]
    report = run(batch, jsonl({"messages": messages, "id": "i" * 200}))
    assert report.created == 1, report.errors


# --------------------------------------------------------------------------------------------------
# Batches that take no import
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [BatchStatus.CLOSED, BatchStatus.GENERATING])
def test_a_closed_or_generating_batch_refuses_imports(status: str) -> None:
    batch = factories.BatchFactory(status=status)
    with pytest.raises(DomainError) as refused:
        run(batch, jsonl({"prompt": "x", "responses": TWO}))
    assert refused.value.code == "invalid_state"
    assert not Item.objects.filter(batch=batch).exists()


def test_a_live_prompt_batch_refuses_imports() -> None:
    batch = draft(prompt_source=PromptSource.LIVE)
    with pytest.raises(DomainError) as refused:
        run(batch, jsonl({"prompt": "x"}))
    assert refused.value.code == "live_batch"
    assert not Item.objects.filter(batch=batch).exists()


def test_an_unknown_batch_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        batch_import_prompts(batch_id=987654, stream=io.BytesIO(jsonl({"prompt": "x"})), user=None)
    assert refused.value.code == "not_found"


# --------------------------------------------------------------------------------------------------
# Management command
# --------------------------------------------------------------------------------------------------


def test_the_command_imports_a_file_and_prints_the_report(tmp_path: Path, capsys: Any) -> None:
    batch = draft()
    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl(*prompts(4), {"prompt": "Prompt number 0"}))
    call_command("import_prompts", str(batch.pk), str(path))
    assert "4 item(s) imported, 1 duplicate(s) skipped" in capsys.readouterr().out
    assert Item.objects.filter(batch=batch).count() == 4


def test_the_command_fails_on_a_refused_file_and_lists_the_lines(tmp_path: Path, capsys: Any) -> None:
    batch = draft()
    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl({"prompt": "ok"}, {"prompt": ""}))
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_prompts", str(batch.pk), str(path), "--json")
    out = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["refused"] is True
    assert out["errors"] == [{"line": 2, "field": "prompt", "message": "must not be empty."}]
    assert not Item.objects.filter(batch=batch).exists()


# --------------------------------------------------------------------------------------------------
# Admin page
# --------------------------------------------------------------------------------------------------


def import_url(batch: Batch) -> str:
    return reverse("admin:batches_batch_import_prompts", args=[batch.pk])


def test_the_batch_change_page_links_to_the_import(staff_client: Client) -> None:
    batch = draft()
    page = staff_client.get(reverse("admin:batches_batch_change", args=[batch.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{import_url(batch)}"' in html and "Import prompts (JSONL)" in html


def test_the_admin_upload_imports_and_reports_the_counts(staff_client: Client, batch_admin: Any) -> None:
    batch = draft()
    factories.ready_item(batch, 1, conversation=[{"role": "user", "content": "Prompt number 0"}])
    page = staff_client.get(import_url(batch))
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.content

    upload = SimpleUploadedFile("p.jsonl", jsonl(*prompts(3)), content_type="application/jsonl")
    response = staff_client.post(import_url(batch), {"file": upload}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:batches_batch_change", args=[batch.pk])
    messages = [str(m) for m in response.context["messages"]]
    assert any("2 item(s) imported, 1 duplicate(s) skipped" in m for m in messages), messages
    assert Item.objects.filter(batch=batch).count() == 3
    assert Item.objects.filter(batch=batch, created_by=batch_admin).count() == 2


def test_a_refused_admin_upload_shows_the_lines_and_imports_nothing(staff_client: Client) -> None:
    batch = draft()
    rows = [*prompts(5), {"prompt": ""}, *prompts(5, start=5), {"messages": [A]}]
    upload = SimpleUploadedFile("p.jsonl", jsonl(*rows))

    response = staff_client.post(import_url(batch), {"file": upload})

    assert response.status_code == 200
    assert response.context["report"].refused
    html = response.content.decode()
    assert "<td>6</td><td><code>prompt</code></td>" in html
    assert "<td>12</td><td><code>messages[0].role</code></td>" in html
    assert "nothing imported" in html
    assert not Item.objects.filter(batch=batch).exists()


def test_the_admin_page_shows_why_a_batch_takes_no_import(staff_client: Client) -> None:
    batch = factories.BatchFactory(status=BatchStatus.CLOSED)
    response = staff_client.post(import_url(batch), {"file": SimpleUploadedFile("p.jsonl", b"")})
    assert response.status_code == 200
    assert "closed batch does not take new prompts" in response.content.decode()


def test_the_admin_page_escapes_what_the_file_said(staff_client: Client) -> None:
    batch = draft()
    upload = SimpleUploadedFile("p.jsonl", jsonl({"prompt": "x", "<script>alert(1)</script>": 1}))
    html = staff_client.post(import_url(batch), {"file": upload}).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_import_page_needs_staff(annotator_client: Client, client: Client) -> None:
    batch = draft()
    upload = SimpleUploadedFile("p.jsonl", jsonl({"prompt": "x"}))
    for anyone in (annotator_client, client):
        assert anyone.get(import_url(batch)).status_code == 302  # to the admin login
        assert anyone.post(import_url(batch), {"file": upload}).status_code == 302
    assert not Item.objects.filter(batch=batch).exists()


def test_staff_without_change_permission_on_batches_is_forbidden(db: None) -> None:
    viewer = factories.UserFactory(username="victor_viewer", is_staff=True)
    client = Client()
    client.force_login(viewer)
    assert client.get(import_url(draft())).status_code == 403


def test_an_unknown_batch_page_is_not_found(staff_client: Client) -> None:
    assert staff_client.get("/admin/batches/batch/987654/import-prompts/").status_code == 404


def test_imported_responses_are_rendered_in_the_background_after_commit(
    insert_path: str, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotate.batches import services as batch_services
    from annotate.batches import tasks

    batch = factories.BatchFactory(status=BatchStatus.OPEN)
    rows = [
        {
            "prompt": f"Q{i}",
            "responses": [
                {"model": "m", "content": f"**bold {i}** <script>x</script>"},
                {"model": "m", "content": f"plain {i}"},
            ],
        }
        for i in range(5)
    ]
    queued: list[int] = []
    monkeypatch.setattr(tasks.responses_render, "delay", queued.append)
    monkeypatch.setattr(batch_services, "RENDER_CHUNK", 3)  # several chunks

    with django_capture_on_commit_callbacks(execute=True):
        report = run(batch, jsonl(*rows))

    assert report.created == 5
    assert queued == [batch.pk]
    assert not Response.objects.filter(item__batch=batch).exclude(content_html="").exists()
    other = factories.BatchFactory(status=BatchStatus.OPEN)
    run(other, jsonl({"prompt": "elsewhere", "responses": TWO}))

    assert tasks.responses_render(batch.pk) == 5  # 10 responses in chunks of 3, then the empty read
    html = dict(Response.objects.filter(item__batch=batch).values_list("content", "content_html"))
    assert html["**bold 0** <script>x</script>"].startswith("<p><strong>bold 0</strong>")
    assert "<script" not in "".join(html.values())
    assert html["plain 3"] == "<p>plain 3</p>\n"
    assert not Response.objects.filter(item__batch=other).exclude(content_html="").exists()
    assert tasks.responses_render(batch.pk) == 5  # a second delivery changes nothing
    assert dict(Response.objects.filter(item__batch=batch).values_list("content", "content_html")) == html


def test_a_refused_import_queues_no_rendering(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from annotate.batches import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.responses_render, "delay", queued.append)
    batch = factories.BatchFactory(status=BatchStatus.OPEN)
    with django_capture_on_commit_callbacks(execute=True):
        report = run(batch, jsonl({"prompt": "ok", "responses": TWO}, {"prompt": ""}))
    assert report.refused
    assert queued == []
