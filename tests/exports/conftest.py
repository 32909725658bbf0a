"""Export fixtures: hand-built judgments (pairwise, ranking, safety, skips) and running an export to rows.

Exports open their own REPEATABLE READ transaction, so these tests use the transactional database: the rows
they build are committed and the export sees them as a worker would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from annotate.accounts.models import User
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import Batch, Item, ItemStatus, Response, ResponseStatus
from annotate.core.choices import Mode, SafetyBin, Track, safety_bin
from annotate.endpoints.models import SamplingConfig
from annotate.exports.models import ExportJob
from annotate.exports.services import export_build
from annotate.exports.spec import parse_export_spec
from annotate.judgments.models import Judgment
from tests import factories

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _no_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """export_request enqueues on commit; unit tests run the build themselves and record the calls."""
    from annotate.exports import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.build_export, "delay", lambda job_id: sent.append(job_id))
    return sent


class Data:
    """Builders of committed rows, each judgment with its assignment, as the services would store them."""

    def __init__(self) -> None:
        self._n = 0
        self.config_a = factories.SamplingConfigFactory(
            label="cfg-a", temperature=0.2, top_p=0.9, max_tokens=256, seed=11, system_prompt="Be terse."
        )
        self.config_b = factories.SamplingConfigFactory(
            label="cfg-b", temperature=1.0, top_p=1.0, max_tokens=512
        )

    def user(self, username: str, *, kind: str = User.Kind.HUMAN) -> User:
        if kind == User.Kind.HUMAN:
            return factories.quick_annotator(username, tracks=[Track.HELPFULNESS, Track.SAFETY])
        return factories.UserFactory(username=username, kind=kind, password=None)

    def batch(self, *, track: str = Track.HELPFULNESS, k: int = 2, **fields: Any) -> Batch:
        mode = Mode.PAIRWISE if k == 2 else Mode.RANKING
        return factories.BatchFactory(track=track, mode=mode, responses_per_item=k, overlap=5, **fields)

    def item(
        self, batch: Batch, *, conversation: list[dict[str, str]] | None = None, is_gold: bool = False
    ) -> Item:
        self._n += 1
        item = Item.objects.create(
            batch=batch,
            conversation=conversation or [{"role": "user", "content": f"Question number {self._n}?"}],
            status=ItemStatus.READY,
            wanted=5,
            is_gold=is_gold,
            gold_expected={"slot": 0} if is_gold else None,
        )
        configs: list[SamplingConfig | None] = [self.config_a, self.config_b, None]
        for slot in range(batch.responses_per_item):
            Response.objects.create(
                item=item,
                slot=slot,
                model_name=f"model-{'abc'[slot % 3]}{slot}",
                sampling_config=configs[slot % 3],
                content=f'Answer {slot} to item {item.pk}.\nSecond line with "quotes" and é.',
                status=ResponseStatus.OK,
                generated_at=timezone.now(),
            )
        return item

    def responses(self, item: Item) -> list[Response]:
        return list(item.responses.order_by("slot"))

    def _assignment(
        self, item: Item, user: User, order: list[int], at: datetime, **fields: Any
    ) -> Assignment:
        return Assignment.objects.create(
            item=item,
            batch=item.batch,
            annotator=user,
            status=fields.pop("status", AssignmentStatus.SUBMITTED),
            leased_at=at - timedelta(minutes=1),
            expires_at=at + timedelta(minutes=30),
            finished_at=at,
            positions=order,
            **fields,
        )

    def pairwise(
        self,
        item: Item,
        user: User,
        *,
        chosen: int = 0,
        strength: str = "better",
        at: datetime | None = None,
        labels: dict[int, str] | None = None,
        shown_swapped: bool = False,
        time_spent_ms: int = 4321,
        guidelines_version: int = 1,
    ) -> Judgment:
        """`user` prefers the response in slot `chosen`; `labels` maps slots to safe/unsafe (safety track)."""
        at = at or timezone.now()
        rs = self.responses(item)
        shown = [rs[1].pk, rs[0].pk] if shown_swapped else [rs[0].pk, rs[1].pk]
        chosen_r, rejected_r = rs[chosen], rs[1 - chosen]
        safety_labels = bin_value = None
        if labels is not None:
            safety_labels = {str(rs[s].pk): v for s, v in labels.items()}
            bin_value = safety_bin(labels[chosen] == "safe", labels[1 - chosen] == "safe").value
        assignment = self._assignment(item, user, shown, at, guidelines_version=guidelines_version)
        judgment = Judgment.objects.create(
            assignment=assignment,
            item=item,
            batch=item.batch,
            annotator=user,
            track=item.batch.track,
            mode=Mode.PAIRWISE,
            chosen=chosen_r,
            rejected=rejected_r,
            strength=strength,
            safety_labels=safety_labels,
            safety_bin=bin_value or "",
            flagged=bin_value == SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE,
            position_chosen=shown.index(chosen_r.pk),
            time_spent_ms=time_spent_ms,
            idempotency_key=f"key-{assignment.pk:08d}",
            guidelines_version=guidelines_version,
        )
        Judgment.objects.filter(pk=judgment.pk).update(created_at=at)
        judgment.created_at = at
        return judgment

    def ranking(
        self,
        item: Item,
        user: User,
        order: list[int],
        *,
        at: datetime | None = None,
        labels: dict[int, str] | None = None,
        shown: list[int] | None = None,
    ) -> Judgment:
        """`order` lists slots best first; `shown` the slots in display order (default slot order)."""
        at = at or timezone.now()
        rs = self.responses(item)
        positions = [rs[s].pk for s in (shown or range(len(rs)))]
        assignment = self._assignment(item, user, positions, at)
        judgment = Judgment.objects.create(
            assignment=assignment,
            item=item,
            batch=item.batch,
            annotator=user,
            track=item.batch.track,
            mode=Mode.RANKING,
            ranking=[rs[s].pk for s in order],
            safety_labels={str(rs[s].pk): v for s, v in labels.items()} if labels else None,
            time_spent_ms=999,
            idempotency_key=f"key-{assignment.pk:08d}",
        )
        Judgment.objects.filter(pk=judgment.pk).update(created_at=at)
        return judgment

    def skip(
        self, item: Item, user: User, reason: str = "I cannot judge this.", flag: str = ""
    ) -> Assignment:
        rs = self.responses(item)
        order = [r.pk for r in rs]
        return self._assignment(
            item, user, order, timezone.now(), status=AssignmentStatus.SKIPPED, skip_reason=reason, flag=flag
        )


@pytest.fixture
def data(transactional_db: None) -> Data:
    return Data()


@dataclass
class Export:
    job: ExportJob
    raw: bytes

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self.job.format == "jsonl":
            return [orjson.loads(line) for line in self.raw.splitlines()]
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(self.raw)).to_pylist()

    def storage_file(self, name: str) -> bytes:
        with default_storage.open(f"exports/{self.job.pk}/{name}", "rb") as f:
            return f.read()


def run_export(
    spec: dict[str, Any] | None = None, schema: str = "trl_preference", fmt: str = "jsonl"
) -> Export:
    """Store a job for the (validated) spec and build it as the worker would; the build must succeed."""
    parsed = parse_export_spec(spec or {}, schema=schema)
    job = ExportJob.objects.create(spec=parsed.to_dict(), schema=schema, format=fmt)
    built = export_build(job.pk)
    assert built is not None
    assert built.status == "done", built.error
    with default_storage.open(built.file.name, "rb") as f:
        raw = f.read()
    return Export(built, raw)


@pytest.fixture
def export() -> Any:
    return run_export
