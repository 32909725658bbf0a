"""Import of prompts from JSONL into a batch: one streaming pass, every row validated, all or nothing.

One row per line, a JSON object:

    {"prompt": "How do I reverse a list in Python?"}
    {"messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": "What is 2 + 2?"}],
     "responses": [{"model": "llama-2-70b", "content": "4"}, {"model": "llama-2-13b", "content": "Four."}],
     "metadata": {"source": "support-tickets"}, "gold": {"preferred": 0, "min_strength": "better"},
     "id": "ticket-123"}

(each row on one line). A row has exactly one of `prompt` (one user turn) and `messages` (an optional leading
system message, then turns alternating user, assistant, ..., ending with the user's turn). `responses`, when
given, are the K pre-generated responses of the batch, used as they are (the item is ready at once); without
them the item waits for generation. `gold` marks a gold item and needs the responses its answer refers to:
`{"preferred": i, "min_strength": s}` in a pairwise batch, `{"ranking": [i, ...]}` (best first) in a ranking
batch. `id` becomes the item's external id; `metadata` is kept with the item. Responses take the slots
0..K-1 in their order, and the expected answer is stored on the item with slot numbers:
`{"slot": i, "min_strength": s or null}` or `{"ranking": [...]}`.

The whole upload is one transaction: rows are inserted in chunks as they are read, and any invalid row
anywhere refuses the upload. Reading goes on to the end so that the report lists every bad line (the first
MAX_REPORTED_ERRORS of them), then everything is rolled back. Lines are read with a bounded reader, so memory
does not grow with the file or with one huge line.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import IO, Any, NamedTuple

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotate.accounts.models import User
from annotate.batches.models import (
    Batch,
    BatchStatus,
    Item,
    ItemSource,
    ItemStatus,
    PromptSource,
    Response,
    ResponseStatus,
)
from annotate.batches.services import ItemsAdded, NewItem, items_add
from annotate.core.choices import Mode, Strength
from annotate.core.errors import ConflictError, DomainError

CHUNK_ROWS = 2000  # rows per INSERT/COPY: big enough to amortise round trips, small enough to stay lean
READ_BYTES = 256 * 1024  # bytes per read from a file-like stream
MAX_REPORTED_ERRORS = 100
MAX_EXTERNAL_ID_CHARS = 200  # Item.external_id
MAX_MODEL_CHARS = 200  # Response.model_name
ROW_KEYS = ("prompt", "messages", "responses", "metadata", "gold", "id")
_ROW_KEY_SET = frozenset(ROW_KEYS)
ROLES = ("system", "user", "assistant")
STRENGTHS = tuple(s.value for s in Strength)
ROW = "row"  # the field of an error about the line as a whole
BOM = b"\xef\xbb\xbf"
ACCEPTING_STATUSES = (BatchStatus.DRAFT, BatchStatus.OPEN, BatchStatus.PAUSED)


class RowError(NamedTuple):
    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0  # lines that were not blank, valid or not
    created: int = 0
    duplicates: int = 0  # conversations the batch already had, or that came earlier in the file
    blank_lines: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS, in line order
    errors_total: int = 0
    refused: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = [e._asdict() for e in self.errors]
        return data

    def summary(self) -> str:
        if self.refused:
            more = f" (the first {len(self.errors)} listed)" if self.errors_total > len(self.errors) else ""
            return (
                f"Upload refused, nothing imported: {self.errors_total} invalid row(s){more} "
                f"among {self.rows} row(s)."
            )
        return (
            f"{self.created} item(s) imported, {self.duplicates} duplicate(s) skipped, "
            f"{self.blank_lines} blank line(s) ignored, {self.rows} row(s) read."
        )


# --------------------------------------------------------------------------------------------------
# Reading lines with bounded memory
# --------------------------------------------------------------------------------------------------


class LineReader:
    """The lines of a byte stream read in chunks, without their terminator (\\n or \\r\\n).

    A line longer than `max_bytes` is never held whole: as soon as its start passes the limit it is given
    out as None and the rest of it is dropped up to the next newline. So at any moment the reader holds at
    most one partial line (<= max_bytes + 1) and the chunk being split; `peak_held` records that high-water
    mark. A last line without a newline is a line like any other.
    """

    def __init__(self, chunks: Iterable[bytes], max_bytes: int) -> None:
        self._chunks = chunks
        self.max_bytes = max_bytes
        self.peak_held = 0

    def _finish(self, line: bytes) -> bytes | None:
        if line[-1:] == b"\r":
            line = line[:-1]
        return line if len(line) <= self.max_bytes else None

    def __iter__(self) -> Iterator[bytes | None]:
        limit = self.max_bytes + 1  # a partial line may still lose the \r of its \r\n
        partial = b""
        skipping = False  # inside a too-long line already reported
        for chunk in self._chunks:
            if not chunk:
                continue
            self.peak_held = max(self.peak_held, len(partial) + len(chunk))
            if skipping:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                chunk = chunk[newline + 1 :]
                skipping = False
            lines = chunk.split(b"\n")
            tail = lines.pop()
            for index, line in enumerate(lines):
                if index == 0 and partial:
                    if len(partial) + len(line) > limit:
                        partial = b""
                        yield None
                        continue
                    line = partial + line  # its start came in earlier chunks
                    partial = b""
                yield self._finish(line) if len(line) <= limit else None
            if len(partial) + len(tail) > limit:
                partial = b""
                skipping = True
                yield None
            elif tail:
                partial = partial + tail if partial else tail
        if partial:
            yield self._finish(partial)


def _chunks_of(stream: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    # A file object is read by size, never iterated: iterating a binary file yields lines of any length.
    read: Callable[[int], bytes] | None = getattr(stream, "read", None)
    if read is None:
        for chunk in stream:  # type: ignore[union-attr]
            yield bytes(chunk)
        return
    while chunk := read(READ_BYTES):
        if isinstance(chunk, str):
            raise TypeError("batch_import_prompts reads bytes: open the file in binary mode.")
        yield chunk


# --------------------------------------------------------------------------------------------------
# Validating one row
# --------------------------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class _Rules:
    k: int
    mode: str
    needs_responses: bool  # a batch past draft never generates again, so its new items must come complete
    max_messages: int
    max_chars: int
    max_metadata_bytes: int


def _name(key: object) -> str:
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: object, where: str, max_chars: int) -> str:
    if type(value) is not str:
        raise _Invalid(where, "must be a string.")
    if not value or value.isspace():
        raise _Invalid(where, "must not be empty.")
    if len(value) > max_chars:
        raise _Invalid(where, f"is {len(value):,} characters long; the limit is {max_chars:,}.")
    if "\x00" in value:
        raise _Invalid(where, "must not contain NUL (\\u0000) characters.")
    return value


def _text_ok(value: object, max_chars: int) -> bool:
    """The checks of `_text` without building messages: the hot path (called a few times per row)."""
    return type(value) is str and 0 < len(value) <= max_chars and not value.isspace() and "\x00" not in value


def _object(value: object, where: str, keys: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Invalid(where, f"must be an object with {', '.join(keys)}.")
    for key in value:
        if key not in keys:
            raise _Invalid(f"{where}.{_name(key)}", f"is not a known key (allowed: {', '.join(keys)}).")
    for key in required:
        if key not in value:
            raise _Invalid(f"{where}.{key}", "is required.")
    return value


_NEXT_ROLE = {"user": "assistant", "assistant": "user"}


def _conversation(data: dict[str, Any], rules: _Rules) -> list[dict[str, str]]:
    if ("prompt" in data) == ("messages" in data):
        raise _Invalid(ROW, "a row needs exactly one of prompt and messages.")
    max_chars = rules.max_chars
    if "prompt" in data:
        prompt = data["prompt"]
        if not _text_ok(prompt, max_chars):
            _text(prompt, "prompt", max_chars)
        return [{"role": "user", "content": prompt}]
    messages = data["messages"]
    if type(messages) is not list:
        raise _Invalid("messages", "must be a list of {role, content} objects.")
    if not messages:
        raise _Invalid("messages", "must not be empty.")
    if len(messages) > rules.max_messages:
        raise _Invalid("messages", f"has {len(messages)} messages; the limit is {rules.max_messages}.")
    conversation = []
    expected = "user"
    for index, message in enumerate(messages):
        # The cheap checks first; the detailed ones run only to say what is wrong.
        if (
            type(message) is not dict
            or len(message) != 2
            or "role" not in message
            or "content" not in message
        ):
            _object(message, f"messages[{index}]", ("role", "content"), ("role", "content"))
        role = message["role"]
        if role == expected:
            expected = _NEXT_ROLE[expected]
        elif not (role == "system" and index == 0):
            _role_error(role, index, expected)
        content = message["content"]
        if not _text_ok(content, max_chars):
            _text(content, f"messages[{index}].content", max_chars)
        # Always the same two keys in the same order: the conversation's hash is computed on these dicts.
        conversation.append({"role": role, "content": content})
    if expected != "assistant":
        raise _Invalid("messages", "the last message must be the user's turn (the one the responses answer).")
    return conversation


def _role_error(role: object, index: int, expected: str) -> None:
    where = f"messages[{index}].role"
    if type(role) is not str or role not in ROLES:
        raise _Invalid(where, "must be one of system, user, assistant.")
    if role == "system":
        raise _Invalid(where, "a system message may only be the first message.")
    raise _Invalid(
        where,
        f"must be {expected}: after an optional system message, turns alternate user, assistant, "
        "user, ... starting with the user.",
    )


def _responses(value: object, rules: _Rules) -> list[tuple[str, str]]:
    if type(value) is not list:
        raise _Invalid("responses", "must be a list of {model, content} objects.")
    if len(value) != rules.k:
        raise _Invalid(
            "responses",
            f"has {len(value)} response(s); this batch takes exactly {rules.k} per item "
            "(or none, to generate them).",
        )
    max_chars = rules.max_chars
    out = []
    for index, response in enumerate(value):
        if (
            type(response) is not dict
            or len(response) != 2
            or "model" not in response
            or "content" not in response
        ):
            _object(response, f"responses[{index}]", ("model", "content"), ("model", "content"))
        model, content = response["model"], response["content"]
        if not _text_ok(model, MAX_MODEL_CHARS):
            _text(model, f"responses[{index}].model", MAX_MODEL_CHARS)
        if not _text_ok(content, max_chars):
            _text(content, f"responses[{index}].content", max_chars)
        out.append((model, content))
    return out


def _index(value: object, where: str, k: int) -> int:
    if type(value) is not int or not 0 <= value < k:
        raise _Invalid(where, f"must be a response index, an integer from 0 to {k - 1}.")
    return value


def _gold(value: object, rules: _Rules) -> dict[str, Any]:
    """The expected answer as stored on the item: {"slot", "min_strength"} or {"ranking"} (slot indices)."""
    if rules.mode == Mode.PAIRWISE:
        gold = _object(value, "gold", ("preferred", "min_strength"), ("preferred",))
        strength = gold.get("min_strength")
        if "min_strength" in gold and (type(strength) is not str or strength not in STRENGTHS):
            raise _Invalid("gold.min_strength", f"must be one of {', '.join(STRENGTHS)}.")
        return {"slot": _index(gold["preferred"], "gold.preferred", rules.k), "min_strength": strength}
    gold = _object(value, "gold", ("ranking",), ("ranking",))
    ranking = gold["ranking"]
    if type(ranking) is not list or len(ranking) != rules.k:
        raise _Invalid("gold.ranking", f"must list all {rules.k} response indices, best first.")
    indices = [_index(i, "gold.ranking", rules.k) for i in ranking]
    if len(set(indices)) != rules.k:
        raise _Invalid("gold.ranking", f"must list each response index from 0 to {rules.k - 1} once.")
    return {"ranking": indices}


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _metadata(value: object, rules: _Rules) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Invalid("metadata", "must be an object.")
    encoded = orjson.dumps(value)
    if len(encoded) > rules.max_metadata_bytes:
        raise _Invalid(
            "metadata", f"is {len(encoded):,} bytes as JSON; the limit is {rules.max_metadata_bytes:,}."
        )
    # PostgreSQL's jsonb cannot hold \u0000; look closer only when its escape shows up at all.
    if b"\\u0000" in encoded and _has_nul(value):
        raise _Invalid("metadata", "must not contain NUL (\\u0000) characters.")
    return value


def _external_id(value: object) -> str:
    if type(value) is int:
        return str(value)
    if type(value) is not str:
        raise _Invalid("id", "must be a string or an integer.")
    if not value:
        raise _Invalid("id", "must not be empty.")
    return _text(value, "id", MAX_EXTERNAL_ID_CHARS)


def parse_row(raw: bytes, rules: _Rules) -> NewItem:
    """One line of the file as an item to add; raises _Invalid with the field and the reason."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise _Invalid(ROW, f"is not valid UTF-8 (bad byte at position {bad.start + 1}).") from None
        raise _Invalid(ROW, f"is not valid JSON: {exc}.") from None
    if type(data) is not dict:
        raise _Invalid(ROW, "must be a JSON object.")
    if not data.keys() <= _ROW_KEY_SET:
        key = next(k for k in data if k not in _ROW_KEY_SET)
        raise _Invalid(_name(key), f"is not a known key (allowed: {', '.join(ROW_KEYS)}).")
    item = NewItem(conversation=_conversation(data, rules))
    if "responses" in data:
        item.responses = _responses(data["responses"], rules)
    elif rules.needs_responses:
        raise _Invalid(
            "responses",
            "are required: this batch is past its draft stage, and only a draft batch generates responses.",
        )
    if "gold" in data:
        if "responses" not in data:
            raise _Invalid("gold", "needs the row's responses: the expected answer refers to them.")
        item.is_gold = True
        item.gold_expected = _gold(data["gold"], rules)
    if "metadata" in data:
        item.metadata = _metadata(data["metadata"], rules)
    if "id" in data:
        item.external_id = _external_id(data["id"])
    return item


# --------------------------------------------------------------------------------------------------
# Writing chunks
# --------------------------------------------------------------------------------------------------

ITEM_COPY_COLUMNS = (
    "id",
    "batch_id",
    "conversation",
    "source",
    "external_id",
    "content_hash",
    "metadata",
    "is_gold",
    "gold_expected",
    "created_by_id",
    "dialogue_id",
    "turn_index",
    "status",
    "wanted",
    "taken",
    "created_at",
)
RESPONSE_COPY_COLUMNS = (
    "item_id",
    "slot",
    "sampling_config_id",
    "model_name",
    "content",
    "content_html",
    "status",
    "error",
    "attempts",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "generated_at",
    "request_id",
)


def items_insert(*, batch: Batch, rows: list[NewItem], created_by: User | None) -> ItemsAdded:
    """Add a chunk of imported items like `items_add` does, skipping conversations the batch already has.

    The one place that looks at the database engine: on PostgreSQL the rows go in with COPY (several times
    faster than INSERT for this), elsewhere through `items_add`. Both give the same rows.
    """
    if connection.vendor == "postgresql":
        return _items_copy(batch=batch, rows=rows, created_by=created_by)
    return items_add(batch=batch, new_items=rows, source=ItemSource.IMPORTED, created_by=created_by)


def _copy_text(value: str) -> bytes:
    """A text value in COPY's text format (NUL never gets here: validation refuses it)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").encode()


def _copy_json(value: object) -> bytes:
    # orjson escapes every control character inside strings and adds no whitespace: only backslashes remain.
    return orjson.dumps(value).replace(b"\\", b"\\\\")


def _uuid4s(n: int) -> Iterator[bytes]:
    """n random (version 4) UUIDs as hex text, from one call to the OS: uuid.uuid4() costs more per call."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])
    text = raw.hex().encode()
    return (text[i : i + 32] for i in range(0, len(text), 32))


COPY_WRITE_ROWS = 500  # rows per write to the COPY stream: a few hundred KB at a time


def _items_copy(*, batch: Batch, rows: list[NewItem], created_by: User | None) -> ItemsAdded:
    encoded = [orjson.dumps(row.conversation) for row in rows]
    # The same digest as models.conversation_hash: the validated messages are exactly {role, content}.
    hashes = [hashlib.sha256(conversation).hexdigest() for conversation in encoded]
    items_table = Item._meta.db_table
    with connection.cursor() as cursor:
        # Earlier chunks of this upload are in this transaction, so this catches duplicates across chunks too.
        # One text parameter split by the server: adapting a list of 2,000 strings costs more than the query.
        cursor.execute(
            f"SELECT content_hash FROM {items_table} "
            "WHERE batch_id = %s AND content_hash = ANY(string_to_array(%s, ','))",
            [batch.pk, ",".join(hashes)],
        )
        existing = {digest for (digest,) in cursor.fetchall()}
        keep: list[int] = []
        for index, digest in enumerate(hashes):
            if digest not in existing:
                existing.add(digest)
                keep.append(index)
        duplicates = len(rows) - len(keep)
        if not keep:
            return ItemsAdded(created=0, duplicates=duplicates)

        # COPY returns no ids: take them from the table's own sequence first, so responses can refer to them.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [items_table, len(keep)],
        )
        ids = [item_id for (item_id,) in cursor.fetchall()]
        now = timezone.now().isoformat().encode()
        k = batch.responses_per_item
        user = str(created_by.pk).encode() if created_by else b"\\N"
        ready, pending = ItemStatus.READY.value.encode(), ItemStatus.PENDING.value.encode()
        source = ItemSource.IMPORTED.value.encode()
        item_lines: list[bytes] = []
        response_lines: list[bytes] = []
        ok = ResponseStatus.OK.value.encode()
        request_ids = _uuid4s(k * len(keep))
        with cursor.copy(f"COPY {items_table} ({', '.join(ITEM_COPY_COLUMNS)}) FROM STDIN") as copy:
            for item_id, index in zip(ids, keep, strict=True):
                row = rows[index]
                item_lines.append(
                    b"%d\t%d\t%b\t%b\t%b\t%b\t%b\t%b\t%b\t%b\t\\N\t0\t%b\t%d\t0\t%b\n"
                    % (
                        item_id,
                        batch.pk,
                        encoded[index].replace(b"\\", b"\\\\"),
                        source,
                        _copy_text(row.external_id),
                        hashes[index].encode(),
                        _copy_json(row.metadata),
                        b"t" if row.is_gold else b"f",
                        b"\\N" if row.gold_expected is None else _copy_json(row.gold_expected),
                        user,
                        ready if len(row.responses) == k else pending,
                        batch.overlap,
                        now,
                    )
                )
                for slot, (model, content) in enumerate(row.responses):
                    response_lines.append(
                        b"%d\t%d\t\\N\t%b\t%b\t\t%b\t\t0\t\\N\t\\N\t\\N\t%b\t%b\n"
                        % (
                            item_id,
                            slot,
                            _copy_text(model),
                            _copy_text(content),
                            ok,
                            now,
                            next(request_ids),
                        )
                    )
                if len(item_lines) >= COPY_WRITE_ROWS:
                    copy.write(b"".join(item_lines))
                    item_lines.clear()
            if item_lines:
                copy.write(b"".join(item_lines))
        if response_lines:
            table = Response._meta.db_table
            with cursor.copy(f"COPY {table} ({', '.join(RESPONSE_COPY_COLUMNS)}) FROM STDIN") as copy:
                for start in range(0, len(response_lines), COPY_WRITE_ROWS):
                    copy.write(b"".join(response_lines[start : start + COPY_WRITE_ROWS]))
    return ItemsAdded(created=len(keep), duplicates=duplicates)


# --------------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------------


class _Refused(Exception):
    """Raised inside the transaction to roll it back; carries nothing: the report is built outside."""


def batch_import_prompts(
    *, batch_id: int, stream: IO[bytes] | Iterable[bytes], user: User | None
) -> ImportReport:
    """Import a JSONL upload into a batch, all or nothing (see the module docstring for the format).

    `stream` is anything with `read(n) -> bytes` (an UploadedFile, a file opened "rb", a Django request for
    a raw body) or an iterable of byte chunks. Returns the report; `report.refused` means the file had
    invalid rows and nothing was imported. Raises DomainError when the batch cannot take imports at all
    (ConflictError, status 409, for a live, closed or generating batch).

    From a DRF view: `stream=request.FILES["file"]` for a multipart upload, or `stream=request.stream` for a
    raw JSONL body (never touch `request.data` / `request.body` first: they would read it all into memory);
    answer `report.as_dict()` with 400 when `report.refused`, else 201.
    """
    report = ImportReport()
    try:
        with transaction.atomic():
            # NO KEY UPDATE: holds off status changes and other imports into this batch (so two uploads
            # never race on the same prompt) while still letting other rows reference the batch.
            batch = Batch.objects.select_for_update(no_key=True).filter(pk=batch_id).first()
            if batch is None:
                raise DomainError(f"Batch {batch_id} does not exist.", code="not_found", field="batch")
            if batch.prompt_source == PromptSource.LIVE:
                raise ConflictError(
                    "This batch takes live prompts written by annotators; it does not import prompts.",
                    code="live_batch",
                    field="batch",
                )
            if batch.status not in ACCEPTING_STATUSES:
                raise ConflictError(
                    f"A {batch.get_status_display().lower()} batch does not take new prompts "
                    "(only draft, open and paused batches do).",
                    code="invalid_state",
                    field="batch",
                )
            _import_rows(batch, stream, user, report)
            if report.refused:
                raise _Refused
            if report.created:
                # Pre-generated responses arrive as text; render them in the background, after commit.
                transaction.on_commit(partial(_render_later, batch.pk))
    except _Refused:
        report.created = report.duplicates = 0
    return report


def _render_later(batch_id: int) -> None:
    from annotate.batches.tasks import responses_render

    responses_render.delay(batch_id)


def _import_rows(
    batch: Batch, stream: IO[bytes] | Iterable[bytes], user: User | None, report: ImportReport
) -> None:
    rules = _Rules(
        k=batch.responses_per_item,
        mode=batch.mode,
        needs_responses=batch.status != BatchStatus.DRAFT,
        max_messages=settings.IMPORT_MAX_MESSAGES,
        max_chars=settings.IMPORT_MAX_CONTENT_CHARS,
        max_metadata_bytes=settings.IMPORT_MAX_METADATA_BYTES,
    )
    max_row_bytes = settings.IMPORT_MAX_ROW_BYTES
    errors = report.errors

    def fail(line: int, where: str, message: str) -> None:
        report.errors_total += 1
        if len(errors) < MAX_REPORTED_ERRORS:
            errors.append(RowError(line, where, message))

    chunk: list[NewItem] = []
    line_no = 0
    for line in LineReader(_chunks_of(stream), max_row_bytes):
        line_no += 1
        if line is None:
            report.rows += 1
            fail(line_no, ROW, f"is longer than {max_row_bytes:,} bytes (IMPORT_MAX_ROW_BYTES).")
            continue
        if line_no == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        if not line or line.isspace():
            report.blank_lines += 1
            continue
        report.rows += 1
        try:
            item = parse_row(line, rules)
        except _Invalid as invalid:
            fail(line_no, invalid.field, invalid.message)
            continue
        if report.errors_total:
            continue  # the upload is refused already: only validate the rest, write nothing more
        chunk.append(item)
        if len(chunk) >= CHUNK_ROWS:
            _flush(batch, chunk, user, report)
            chunk = []
    if chunk and not report.errors_total:
        _flush(batch, chunk, user, report)
    if report.rows == 0 and not report.errors_total:
        fail(0, "file", "has no rows.")
    report.refused = report.errors_total > 0


def _flush(batch: Batch, chunk: list[NewItem], user: User | None, report: ImportReport) -> None:
    added = items_insert(batch=batch, rows=chunk, created_by=user)
    report.created += added.created
    report.duplicates += added.duplicates
