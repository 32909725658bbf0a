"""The files an export writes: typed Parquet, JSONL with the same rows, byte-identical reruns, the manifest
(with the file's sha256) and the dataset card."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from annotate.exports.datasets import COLUMNS
from tests.exports.conftest import T0, Data

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def mixed_data(data: Data) -> None:
    """Pairwise and ranking, helpfulness and safety, single and multi-turn, a skip: every column filled."""
    alice, bob = data.user("alice"), data.user("bob")
    helpful, safety, ranked = data.batch(), data.batch(track="safety"), data.batch(k=4)
    multi = [
        {"role": "user", "content": 'Línea uno\nwith a newline and "quotes" and a tab\t.'},
        {"role": "assistant", "content": "Answer"},
        {"role": "user", "content": "More? 🙂"},
    ]
    for n in range(3):
        item = data.item(helpful, conversation=multi if n == 1 else None)
        data.pairwise(item, alice, chosen=n % 2, strength="slightly_better", at=T0)
        data.pairwise(item, bob, chosen=0, strength="significantly_better")
    data.pairwise(data.item(safety), alice, labels={0: "safe", 1: "unsafe"})
    data.ranking(data.item(ranked), bob, [3, 1, 0, 2], labels=None)
    data.skip(data.item(helpful), bob, flag="offensive")


def normalized(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parquet gives datetimes where JSON has RFC 3339 strings."""

    def fix(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return value

    return [{k: fix(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize("schema", ["trl_preference", "pairwise_flat", "judgments_raw"])
def test_jsonl_and_parquet_hold_the_same_rows(data: Data, export: Any, schema: str) -> None:
    mixed_data(data)
    jsonl = export({}, schema, "jsonl").rows
    parquet = export({}, schema, "parquet").rows
    assert len(jsonl) > 5
    assert normalized(parquet) == jsonl


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize("spec", [{}, {"aggregation": "majority", "margin": "large"}])
def test_two_exports_of_unchanged_data_are_byte_identical(
    data: Data, export: Any, fmt: str, spec: dict[str, Any]
) -> None:
    mixed_data(data)
    first, second = export(spec, "trl_preference", fmt), export(spec, "trl_preference", fmt)
    assert first.job.pk != second.job.pk
    assert first.raw == second.raw
    assert first.job.sha256 == second.job.sha256


def test_parquet_columns_have_explicit_types(data: Data, export: Any) -> None:
    mixed_data(data)
    table = pq.read_table(io.BytesIO(export({}, "trl_preference", "parquet").raw))
    schema = table.schema
    assert schema.names == [c.name for c in COLUMNS["trl_preference"]]
    assert schema.field("prompt").type == MESSAGES
    assert schema.field("chosen").type == MESSAGES
    assert schema.field("rejected").type == MESSAGES
    assert schema.field("margin").type == pa.float64()
    for name in (
        "judgment_id",
        "item_id",
        "batch",
        "chosen_response_id",
        "time_spent_ms",
        "chosen_max_tokens",
    ):
        assert schema.field(name).type == pa.int64(), name
    for name in ("id", "strength", "annotator", "chosen_model", "safety_bin", "group_id"):
        assert schema.field(name).type == pa.string(), name
    assert schema.field("chosen_temperature").type == pa.float64()
    assert schema.field("is_gold").type == pa.bool_()
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert not schema.field("margin").nullable
    assert schema.field("safety_bin").nullable


def test_parquet_of_raw_judgments_types_lists_and_structs(data: Data, export: Any) -> None:
    mixed_data(data)
    schema = pq.read_table(io.BytesIO(export({}, "judgments_raw", "parquet").raw)).schema
    assert schema.field("ranking").type == pa.list_(pa.int64())
    assert schema.field("positions").type == pa.list_(pa.int64())
    assert schema.field("prompt").type == MESSAGES
    responses = schema.field("responses").type
    assert responses.value_type.field("id").type == pa.int64()
    assert responses.value_type.field("safety_label").type == pa.string()


def test_parquet_row_groups_gather_read_chunks(data: Data, export: Any, monkeypatch: Any) -> None:
    from annotate.exports import services

    monkeypatch.setattr(services, "CHUNK_ROWS", 1)
    monkeypatch.setattr(services, "ROW_GROUP_ROWS", 2)
    alice = data.user("alice")
    batch = data.batch()
    for _ in range(5):
        data.pairwise(data.item(batch), alice)
    metadata = pq.ParquetFile(io.BytesIO(export({}, "trl_preference", "parquet").raw)).metadata
    assert metadata.num_rows == 5
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [2, 2, 1]
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_the_trl_columns_load_with_plain_json_and_pyarrow(data: Data, export: Any) -> None:
    mixed_data(data)
    jsonl = export({}, "trl_preference", "jsonl")
    for line in jsonl.raw.decode("utf-8").splitlines():
        row = json.loads(line)
        for column in ("prompt", "chosen", "rejected"):
            assert isinstance(row[column], list) and row[column]
            assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in row[column])
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
        assert row["prompt"][-1]["role"] == "user"
        assert isinstance(row["margin"], float)
    table = pa_json.read_json(io.BytesIO(jsonl.raw))  # pyarrow infers the same nested shapes from JSONL
    assert table.schema.field("prompt").type == MESSAGES
    assert table.schema.field("margin").type == pa.float64()


def test_the_manifest_describes_the_file(data: Data, export: Any) -> None:
    mixed_data(data)
    done = export({"margin": "large"}, "trl_preference", "parquet")
    manifest = json.loads(done.storage_file("manifest.json"))
    assert manifest == done.job.manifest
    assert manifest["sha256"] == hashlib.sha256(done.raw).hexdigest() == done.job.sha256
    assert manifest["bytes"] == len(done.raw)
    assert manifest["row_count"] == done.job.row_count == len(done.rows)
    assert manifest["schema"] == "trl_preference" and manifest["format"] == "parquet"
    assert manifest["spec"]["margin"] == "large"
    assert manifest["margin_preset"]["better"] == 2.0
    assert [c["name"] for c in manifest["columns"]] == [c.name for c in COLUMNS["trl_preference"]]
    assert manifest["created_at"] == done.job.created_at.isoformat().replace("+00:00", "Z")
    assert manifest["generator"]["pyarrow"] == pa.__version__
    assert {b["track"] for b in manifest["batches"]} == {"helpfulness", "safety"}
    assert all(versions == [1] for versions in manifest["guideline_versions"].values())
    assert done.job.file.name == f"exports/{done.job.pk}/trl_preference.parquet"


def test_the_dataset_card_documents_columns_and_provenance(data: Data, export: Any) -> None:
    mixed_data(data)
    done = export({"keep_unsafe_chosen": True})
    card = done.storage_file("README.md").decode()
    assert card.startswith(f"# Preference dataset: export {done.job.pk} (trl_preference, jsonl)")
    assert done.job.sha256 in card
    for column in COLUMNS["trl_preference"]:
        assert f"| `{column.name}` |" in card
    assert "C(K,2)" in card and "rank gap" in card
    assert "kept (keep_unsafe_chosen)" in card
    assert "pseudonym" in card
    assert '"keep_unsafe_chosen": true' in card


def test_an_export_without_rows_is_still_a_valid_file(data: Data, export: Any) -> None:
    data.batch()
    empty_jsonl = export({}, "trl_preference", "jsonl")
    assert empty_jsonl.raw == b"" and empty_jsonl.job.row_count == 0
    assert empty_jsonl.job.sha256 == hashlib.sha256(b"").hexdigest()
    empty_parquet = export({}, "trl_preference", "parquet")
    table = pq.read_table(io.BytesIO(empty_parquet.raw))
    assert table.num_rows == 0
    assert table.schema.names == [c.name for c in COLUMNS["trl_preference"]]
