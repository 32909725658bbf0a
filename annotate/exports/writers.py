"""Dataset writers (JSON Lines, Parquet), the manifest and the dataset card.

Both writers take rows chunk by chunk (tuples in the schema's column order, see datasets.py) and write them
at once, so memory holds one chunk. The data file carries nothing about when or by whom it was made: two
exports of the same rows are byte-identical (Parquet's footer names the writing library's version, which is
fixed by requirements.txt). The output passes through HashingFile, which computes the sha256 and the size
while the bytes go out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, BinaryIO, Protocol

import orjson

from annotate.exports.datasets import Column
from annotate.exports.models import ExportFormat

# Times are naive UTC (see queries.py), written as RFC 3339 with a Z.
JSONL_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
PARQUET_COMPRESSION = "zstd"
# Columns with few distinct values get dictionary pages; long texts would only grow the dictionary.
DICTIONARY_TYPES = {"string", "bool"}
DICTIONARY_EXCLUDED = {
    "id",
    "group_id",
    "prompt",
    "context",
    "chosen",
    "rejected",
    "rationale",
    "skip_reason",
    "flag_note",
    "chosen_system_prompt",
    "rejected_system_prompt",
}


class HashingFile:
    """A write-only binary stream that hashes and counts what passes through to `target`."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self.size += view.nbytes
        self.target.write(view)
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.target.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        # The writers close their own encoders; the underlying file belongs to the caller.
        self.closed = True


class DatasetWriter(Protocol):
    def write(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """One JSON object per line, keys in column order, UTC times as RFC 3339 with Z."""

    def __init__(self, out: HashingFile, columns: Sequence[Column]) -> None:
        self.out = out
        self.names = [c.name for c in columns]
        self.assistant = [c.name for c in columns if c.type == "assistant"]

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        dumps, names, assistant = orjson.dumps, self.names, self.assistant
        # Every row of a chunk comes from the same builder code: checking the first one's width is enough,
        # and zip(strict=True) on each row cost a tenth of the writer's instructions (measured).
        if len(rows[0]) != len(names):
            raise ValueError(f"A row has {len(rows[0])} values for the {len(names)} columns of its schema.")
        lines = []
        append = lines.append
        for row in rows:
            record = dict(zip(names, row, strict=False))
            for name in assistant:
                record[name] = [{"role": "assistant", "content": record[name]}]
            append(dumps(record, option=JSONL_OPTIONS))
        self.out.write(b"".join(lines))

    def close(self) -> None:
        self.out.flush()


def arrow_type(name: str) -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "int64_list": pa.list_(pa.int64()),
        "messages": pa.list_(message),
        "assistant": pa.list_(message),
        "responses": pa.list_(
            pa.struct(
                [
                    ("id", pa.int64()),
                    ("slot", pa.int64()),
                    ("model", pa.string()),
                    ("sampling_config", pa.string()),
                    ("content", pa.string()),
                    ("safety_label", pa.string()),
                ]
            )
        ),
    }
    return types[name]


def arrow_schema(columns: Sequence[Column]) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in columns])


class ParquetDatasetWriter:
    """Parquet with an explicit schema. Chunks are converted to Arrow at once (compact buffers instead of
    Python objects) and written as one row group when `row_group_rows` have gathered."""

    def __init__(self, out: HashingFile, columns: Sequence[Column], *, row_group_rows: int = 10_000) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        # The C library's allocator, not Arrow's default (mimalloc): it gives each chunk's freed buffers
        # back at once, where mimalloc kept 20-25 MB more at the peak on the export benchmark. Set as the
        # process default too, for what pyarrow allocates internally (converting Python values, encoding
        # pages); nothing else in a worker uses Arrow.
        self.pool = pa.system_memory_pool()
        pa.set_memory_pool(self.pool)
        self.columns = list(columns)
        self.schema = arrow_schema(columns)
        self.row_group_rows = row_group_rows
        self.pending: list[Any] = []
        self.pending_rows = 0
        dictionary = [
            c.name for c in columns if c.type in DICTIONARY_TYPES and c.name not in DICTIONARY_EXCLUDED
        ]
        self.writer = pq.ParquetWriter(
            out,
            self.schema,
            compression=PARQUET_COMPRESSION,
            use_dictionary=dictionary,
            write_statistics=True,
            memory_pool=self.pool,
        )

    def _array(self, column: Column, values: Sequence[Any], field: Any) -> Any:
        pa, pool = self.pa, self.pool
        if column.type == "assistant":
            contents = pa.array(values, pa.string(), memory_pool=pool)
            roles = pa.array(["assistant"] * len(values), pa.string(), memory_pool=pool)
            messages = pa.StructArray.from_arrays(
                [roles, contents], fields=list(field.type.value_type), memory_pool=pool
            )
            offsets = pa.array(range(len(values) + 1), pa.int32(), memory_pool=pool)
            return pa.ListArray.from_arrays(offsets, messages, type=field.type, pool=pool)
        return pa.array(values, field.type, memory_pool=pool)

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        values = list(zip(*rows, strict=True))
        arrays = [
            self._array(column, column_values, field)
            for column, column_values, field in zip(self.columns, values, self.schema, strict=True)
        ]
        self.pending.append(self.pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.pending_rows += len(rows)
        if self.pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self.pending_rows:
            table = self.pa.Table.from_batches(self.pending, schema=self.schema)
            self.writer.write_table(table, row_group_size=self.pending_rows)
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self.writer.close()


def open_writer(
    fmt: str, out: HashingFile, columns: Sequence[Column], *, row_group_rows: int = 10_000
) -> DatasetWriter:
    if fmt == ExportFormat.JSONL:
        return JsonlWriter(out, columns)
    if fmt == ExportFormat.PARQUET:
        return ParquetDatasetWriter(out, columns, row_group_rows=row_group_rows)
    raise ValueError(f"Unknown export format {fmt!r}")


FILE_EXTENSIONS = {ExportFormat.JSONL: "jsonl", ExportFormat.PARQUET: "parquet"}


# --- Manifest and dataset card ------------------------------------------------------------------------


def build_manifest(
    *,
    job_id: int,
    schema: str,
    fmt: str,
    file_name: str,
    row_count: int,
    sha256: str,
    size: int,
    columns: Sequence[Column],
    spec: dict[str, Any],
    margins: dict[str, float] | None,
    batches: list[dict[str, Any]],
    guideline_versions: set[tuple[int, int]],
    created_at: datetime,
    sources: dict[str, int] | None = None,
) -> dict[str, Any]:
    versions: dict[str, list[int]] = {}
    for batch_id, version in sorted(guideline_versions):
        versions.setdefault(str(batch_id), []).append(version)
    generator: dict[str, Any] = {"name": "annotate.exports", "format_version": 1}
    if fmt == ExportFormat.PARQUET:
        import pyarrow

        generator["pyarrow"] = pyarrow.__version__
    return {
        "job_id": job_id,
        "schema": schema,
        "format": fmt,
        "file": file_name,
        "row_count": row_count,
        "bytes": size,
        "sha256": sha256,
        "columns": [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in columns],
        "spec": spec,
        "margin_preset": margins,
        "batches": batches,
        "guideline_versions": versions,
        "sources": sources or {},
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "generator": generator,
    }


_SCHEMA_SUMMARY = {
    "trl_preference": (
        "One row per comparison in TRL's preference format: `prompt`, `chosen` and `rejected` are lists of "
        "`{role, content}` messages (load with `datasets` and pass to `trl.RewardTrainer` or `DPOTrainer`); "
        "`margin` is the LLaMa-2 preference margin."
    ),
    "pairwise_flat": (
        "One row per comparison, with the prompt and both responses as plain strings and the same metadata "
        "as trl_preference."
    ),
    "judgments_raw": (
        "One row per judgment as it was recorded (rankings as ordered lists, safety labels per response), "
        "plus the assignments that were skipped or flagged, marked by the `status`, `skipped` and `flagged` "
        "columns. Ordered by assignment id."
    ),
}

_COMPARISON_RULES = """\
## How comparisons are made

- **Margin** (LLaMa-2): significantly better / better / slightly better / negligibly better or unsure map to
  1, 2/3, 1/3, 0 with the `small` preset and 3, 2, 1, 0 with `large`. This export: `{margin}` ({values}).
- **Rankings** of K responses become all C(K,2) pairs, the better-ranked response chosen, in the order
  (1st, 2nd), (1st, 3rd) ... (2nd, 3rd) ...; the pairs of one ranking share `group_id`. Their strength comes
  from the rank gap: 1 = slightly_better, 2 = better, 3 or more = significantly_better.
- **Safety** (LLaMa-2): comparisons whose chosen response was labelled unsafe while the other was safe are
  {unsafe_rule}.
- **Votes**: when counted (aggregation `majority`, `min_agreement` or `min_judgments`), the comparisons of one
  item and response pair are its votes; agreement is the share on the larger side. `majority` gives one row
  per pair with a strict majority: its chosen side, strength = lower median of the majority's strengths,
  safety labels by majority per response (a tie counts as unsafe).
- **Order**: by judgment id (ranking pairs in the order above), or by item id when votes are counted.
- **Prompt**: the item's conversation before the judged turn. A sampling config's system prompt is not put
  into the messages; it is in `chosen_system_prompt` / `rejected_system_prompt`.
"""


def _mix(sources: dict[str, int]) -> str:
    """The human / AI mix, e.g. "human 1200 (60.0%), ai:judge@v2 800 (40.0%)" (the `ai` spec field)."""
    total = sum(sources.values())
    if not total:
        return "none"
    parts = [f"{name} {n} ({100 * n / total:.1f}%)" for name, n in sorted(sources.items())]
    ai = sum(n for name, n in sources.items() if name != "human")
    kind = "human only" if not ai else "AI judges only" if ai == total else "humans and AI judges"
    return f"{kind}: " + ", ".join(parts)


def render_dataset_card(
    *,
    job_id: int,
    schema: str,
    fmt: str,
    columns: Sequence[Column],
    manifest: dict[str, Any],
) -> str:
    spec = manifest["spec"]
    lines = [
        f"# Preference dataset: export {job_id} ({schema}, {fmt})",
        "",
        _SCHEMA_SUMMARY[schema],
        "",
        f"- Rows: {manifest['row_count']}",
        f"- File: `{manifest['file'].rsplit('/', 1)[-1]}` ({manifest['bytes']} bytes)",
        f"- sha256: `{manifest['sha256']}`",
        f"- Created: {manifest['created_at']}",
        "- Annotators are named by stable pseudonyms, never by username or account id.",
        f"- Judgments by source: {_mix(manifest.get('sources') or {})}",
        "",
        "## Provenance",
        "",
        "Judgments collected on this platform (LLaMa-2-style pairwise comparisons with a four-point "
        "strength, or InstructGPT-style rankings), read from one consistent database snapshot.",
        "",
        "Filter spec:",
        "",
        "```json",
        orjson.dumps(spec, option=orjson.OPT_INDENT_2).decode(),
        "```",
        "",
        "| batch | name | track | mode | guidelines versions in this file |",
        "|---|---|---|---|---|",
    ]
    versions = manifest["guideline_versions"]
    for batch in manifest["batches"]:
        seen = ", ".join(str(v) for v in versions.get(str(batch["id"]), []))
        name = str(batch["name"]).replace("|", "\\|")
        lines.append(f"| {batch['id']} | {name} | {batch['track']} | {batch['mode']} | {seen} |")
    lines.append("")
    if schema != "judgments_raw":
        margins = manifest["margin_preset"] or {}
        values = ", ".join(f"{k}: {round(v, 4)}" for k, v in margins.items())
        unsafe_rule = "kept (keep_unsafe_chosen)" if spec.get("keep_unsafe_chosen") else "left out"
        lines.append(
            _COMPARISON_RULES.format(margin=spec.get("margin"), values=values, unsafe_rule=unsafe_rule)
        )
    lines += ["## Columns", "", "| column | type | description |", "|---|---|---|"]
    for column in columns:
        kind = column.type + ("" if column.nullable else ", never null")
        description = column.description.replace("|", "\\|")
        lines.append(f"| `{column.name}` | {kind} | {description} |")
    lines.append("")
    return "\n".join(lines)
