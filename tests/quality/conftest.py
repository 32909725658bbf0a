"""Quality fixtures: a builder of judgments stored as the services store them (with their assignments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from annotate.accounts.models import User
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import Batch, Item, ItemStatus, Response, ResponseStatus
from annotate.core.choices import Mode, Track
from annotate.endpoints.models import SamplingConfig
from annotate.judgments.models import Judgment
from tests import factories

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Builder:
    def __init__(self) -> None:
        self._n = 0
        self.config_cold = factories.SamplingConfigFactory(label="cold", temperature=0.2)
        self.config_hot = factories.SamplingConfigFactory(label="hot", temperature=1.2)

    def user(self, username: str, *, kind: str = User.Kind.HUMAN) -> User:
        if kind == User.Kind.HUMAN:
            return factories.quick_annotator(username, tracks=[Track.HELPFULNESS, Track.SAFETY])
        return factories.UserFactory(username=username, kind=kind, password=None)

    def batch(self, *, k: int = 2, **fields: Any) -> Batch:
        mode = Mode.PAIRWISE if k == 2 else Mode.RANKING
        fields.setdefault("overlap", 3)
        return factories.BatchFactory(mode=mode, responses_per_item=k, **fields)

    def item(
        self,
        batch: Batch,
        *,
        gold: dict[str, Any] | None = None,
        models: list[str] | None = None,
        configs: list[SamplingConfig | None] | None = None,
    ) -> Item:
        """Responses get longer with their slot (slot 0 is the shortest)."""
        self._n += 1
        item = Item.objects.create(
            batch=batch,
            conversation=[{"role": "user", "content": f"Question number {self._n}?"}],
            status=ItemStatus.READY,
            wanted=batch.overlap,
            is_gold=gold is not None,
            gold_expected=gold,
        )
        k = batch.responses_per_item
        models = models or [f"model-{'abcdefghi'[s]}" for s in range(k)]
        configs = configs or [None] * k
        Response.objects.bulk_create(
            Response(
                item=item,
                slot=slot,
                model_name=models[slot],
                sampling_config=configs[slot],
                content="x" * (10 + 5 * slot),
                status=ResponseStatus.OK,
                generated_at=timezone.now(),
            )
            for slot in range(k)
        )
        return item

    def _assignment(self, item: Item, user: User, positions: list[int], at: datetime) -> Assignment:
        return Assignment.objects.create(
            item=item,
            batch=item.batch,
            annotator=user,
            status=AssignmentStatus.SUBMITTED,
            leased_at=at - timedelta(minutes=1),
            expires_at=at + timedelta(minutes=30),
            finished_at=at,
            positions=positions,
        )

    def pairwise(
        self,
        item: Item,
        user: User,
        chosen: int,
        strength: str = "better",
        *,
        swapped: bool = False,
        at: datetime = T0,
        time_ms: int = 5000,
    ) -> Judgment:
        """`user` prefers slot `chosen`; `swapped` shows slot 1 on the left."""
        rs = list(item.responses.order_by("slot"))
        shown = [rs[1].pk, rs[0].pk] if swapped else [rs[0].pk, rs[1].pk]
        assignment = self._assignment(item, user, shown, at)
        judgment = Judgment.objects.create(
            assignment=assignment,
            item=item,
            batch=item.batch,
            annotator=user,
            track=item.batch.track,
            mode=Mode.PAIRWISE,
            chosen=rs[chosen],
            rejected=rs[1 - chosen],
            strength=strength,
            safety_labels={str(r.pk): "safe" for r in rs} if item.batch.track == Track.SAFETY else None,
            safety_bin="both_safe" if item.batch.track == Track.SAFETY else "",
            position_chosen=shown.index(rs[chosen].pk),
            time_spent_ms=time_ms,
            idempotency_key=f"key-{assignment.pk:08d}",
        )
        Judgment.objects.filter(pk=judgment.pk).update(created_at=at)
        return judgment

    def ranking(self, item: Item, user: User, order: list[int], *, at: datetime = T0) -> Judgment:
        """`order`: slots best first."""
        rs = list(item.responses.order_by("slot"))
        assignment = self._assignment(item, user, [r.pk for r in rs], at)
        judgment = Judgment.objects.create(
            assignment=assignment,
            item=item,
            batch=item.batch,
            annotator=user,
            track=item.batch.track,
            mode=Mode.RANKING,
            ranking=[rs[s].pk for s in order],
            time_spent_ms=7000,
            idempotency_key=f"key-{assignment.pk:08d}",
        )
        Judgment.objects.filter(pk=judgment.pk).update(created_at=at)
        return judgment


@pytest.fixture
def build(db: None) -> Builder:
    return Builder()
