"""Every route x every role: the expected status, and nothing of one annotator's work shown to another.

Roles: anonymous, alice (annotator, owns the objects below), bob (another annotator of the same track),
a batch admin (not qualified to annotate), an exporter, and alice's revoked and expired tokens. Each route
runs once per role inside a savepoint that is rolled back, so every role meets the same world.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from annotate.api.models import ApiToken
from annotate.api.views.base import ApiView
from annotate.assignments import services as assignments
from annotate.assignments.models import Assignment
from annotate.batches.live import live_dialogue_start
from annotate.batches.models import BatchStatus
from annotate.core.choices import Track
from annotate.exports.models import ExportJob
from annotate.judges.models import Judge
from annotate.judges.services import judge_run_start
from annotate.judgments.services import judgment_submit
from tests import factories
from tests.api.conftest import expire, make_token, token_client

pytestmark = pytest.mark.django_db

UNAUTHENTICATED = ("anonymous", "revoked token", "expired token")
ROLES = ("alice", "bob", "admin", "exporter")


@dataclass
class World:
    ids: dict[str, Any]
    clients: dict[str, APIClient]
    answer: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def world(annotator: Any, other_annotator: Any, batch_admin: Any, exporter: Any, settings: Any) -> World:
    settings.ALLOWED_ENDPOINT_HOSTS = ["127.0.0.1"]
    config = factories.SamplingConfigFactory()
    batch = factories.ready_batch(items=3, overlap=2)
    draft = factories.ready_batch(items=1, status=BatchStatus.DRAFT)
    safety = factories.ready_batch(items=1, track=Track.SAFETY)
    ids: dict[str, Any] = {"endpoint": config.endpoint_id, "config": config.pk, "batch": batch.pk}
    ids |= {"draft": draft.pk, "safety": safety.pk, "alice": annotator.pk, "track": Track.HELPFULNESS.value}
    for user in (annotator, other_annotator):
        assignments.guidelines_mark_seen(annotator=user, batch=batch)
        first = assignments.assignment_claim_next(annotator=user, batch_id=batch.pk)
        assert first is not None
        judgment = judgment_submit(
            annotator=user,
            assignment_id=first.pk,
            data=factories.pairwise_answer(first, f"matrix-first-{user.pk}"),
        ).judgment
        second = assignments.assignment_claim_next(annotator=user, batch_id=batch.pk)
        assert second is not None
        ids[f"{user.username}_judgment"] = judgment.pk
        ids[f"{user.username}_assignment"] = second.pk
    ids["item"] = batch.items.order_by("pk").first().pk  # type: ignore[union-attr]
    # A live batch in which alice has written a prompt (its responses are still pending).
    live = factories.BatchFactory(prompt_source="live", guidelines="")
    live.sampling_configs.set([config])
    ids["live"] = live.pk
    ids["alice_dialogue"] = live_dialogue_start(
        annotator=annotator, batch_id=live.pk, prompt="Hi"
    ).dialogue.pk
    # A judge that has judged one item of the batch: the other two are left for a run started in the matrix.
    judge = Judge.objects.create(name="matrix judge", sampling_config=config)
    ids["judge"] = judge.pk
    ids["judge_run"] = judge_run_start(
        judge_id=judge.pk, batch_id=batch.pk, user=batch_admin, sample_size=1
    ).pk
    mine = Assignment.objects.get(pk=ids["alice_assignment"])
    answer = {"idempotency_key": "matrix-01", "chosen": int(mine.positions[0]), "strength": "better"}
    ids["export_erin"] = ExportJob.objects.create(
        requested_by=exporter, schema="pairwise_flat", format="jsonl"
    ).pk
    ids["export_admin"] = ExportJob.objects.create(
        requested_by=batch_admin, schema="pairwise_flat", format="jsonl"
    ).pk
    alices_token = make_token(annotator, name="alice's other token")
    ids["alice_token"] = ApiToken.objects.get(token_key=alices_token[:15]).pk
    revoked = make_token(annotator, name="revoked")
    ApiToken.objects.filter(token_key=revoked[:15]).delete()
    expired = make_token(annotator, name="expired", days=1)
    expire(expired)
    clients = {
        "anonymous": APIClient(),
        "alice": token_client(make_token(annotator)),
        "bob": token_client(make_token(other_annotator)),
        "admin": token_client(make_token(batch_admin)),
        "exporter": token_client(make_token(exporter)),
        "revoked token": token_client(revoked),
        "expired token": token_client(expired),
    }
    return World(ids=ids, clients=clients, answer=answer)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    expect: tuple[int, int, int, int]  # alice, bob, admin, exporter
    body: Any = None
    content_type: str = "application/json"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def every(status: int) -> tuple[int, int, int, int]:
    return (status, status, status, status)


ADMIN_ONLY_LIST = (403, 403, 200, 403)
ADMIN_ONLY_OBJECT = (404, 404, 200, 404)
OWNER_ONLY = (200, 404, 404, 404)

ROUTES = [
    Route("GET", "/api/v1/me/", every(200)),
    Route("POST", "/api/v1/me/safety-consent/", every(400), {"agree": True}),  # nobody here is qualified
    Route("GET", "/api/v1/tokens/", every(200)),
    Route("POST", "/api/v1/tokens/", every(201), {"name": "new"}),
    Route("GET", "/api/v1/tokens/{alice_token}/", OWNER_ONLY),
    Route("DELETE", "/api/v1/tokens/{alice_token}/", (204, 404, 404, 404)),
    Route("GET", "/api/v1/endpoints/", ADMIN_ONLY_LIST),
    Route(
        "POST",
        "/api/v1/endpoints/",
        (403, 403, 201, 403),
        {"name": "local vllm", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
    ),
    Route("GET", "/api/v1/endpoints/{endpoint}/", ADMIN_ONLY_OBJECT),
    Route("PATCH", "/api/v1/endpoints/{endpoint}/", ADMIN_ONLY_OBJECT, {"enabled": False}),
    Route("POST", "/api/v1/endpoints/{endpoint}/test/", ADMIN_ONLY_OBJECT),
    Route("GET", "/api/v1/sampling-configs/", ADMIN_ONLY_LIST),
    Route(
        "POST", "/api/v1/sampling-configs/", (403, 403, 201, 403), {"endpoint": "{endpoint}", "label": "hot"}
    ),
    Route("GET", "/api/v1/sampling-configs/{config}/", ADMIN_ONLY_OBJECT),
    Route("PATCH", "/api/v1/sampling-configs/{config}/", ADMIN_ONLY_OBJECT, {"temperature": 1.0}),
    Route("GET", "/api/v1/batches/", every(200)),
    Route("POST", "/api/v1/batches/", (403, 403, 201, 403), {"name": "Week 7", "track": "helpfulness"}),
    Route("GET", "/api/v1/batches/{batch}/", every(200)),
    Route("PATCH", "/api/v1/batches/{batch}/", (403, 403, 200, 403), {"description": "new"}),
    Route("GET", "/api/v1/batches/{draft}/", (404, 404, 200, 200)),
    Route("PATCH", "/api/v1/batches/{draft}/", (404, 404, 200, 403), {"description": "new"}),
    Route("GET", "/api/v1/batches/{safety}/", (404, 404, 200, 200)),
    Route(
        "POST",
        "/api/v1/batches/{draft}/import/",
        (404, 404, 200, 403),
        b'{"prompt": "A new question?"}\n',
        "application/x-ndjson",
    ),
    Route("POST", "/api/v1/batches/{draft}/start/", (404, 404, 200, 403)),
    Route("POST", "/api/v1/batches/{batch}/pause/", (403, 403, 200, 403)),
    Route("POST", "/api/v1/batches/{batch}/close/", (403, 403, 200, 403)),
    Route("POST", "/api/v1/batches/{batch}/open/", (403, 403, 200, 403)),
    Route("POST", "/api/v1/batches/{batch}/retry-failed/", (403, 403, 200, 403)),
    Route("POST", "/api/v1/batches/{batch}/drop-failed/", (403, 403, 200, 403)),
    Route("GET", "/api/v1/batches/{batch}/progress/", every(200)),
    Route("GET", "/api/v1/batches/{draft}/progress/", (404, 404, 200, 200)),
    Route("GET", "/api/v1/batches/{batch}/guidelines/", every(200)),
    Route("POST", "/api/v1/batches/{batch}/guidelines/", every(200), {"version": 1}),
    Route("POST", "/api/v1/batches/{batch}/claim/", (200, 200, 403, 403)),
    Route("POST", "/api/v1/batches/{safety}/claim/", (404, 404, 403, 403)),
    Route(
        "POST", "/api/v1/batches/{live}/live/", (409, 201, 403, 403), {"prompt": "Hello"}
    ),  # alice holds one
    Route("GET", "/api/v1/dialogues/{alice_dialogue}/", OWNER_ONLY),
    Route("POST", "/api/v1/dialogues/{alice_dialogue}/continue/", (409, 404, 404, 404), {"prompt": "More"}),
    Route("POST", "/api/v1/dialogues/{alice_dialogue}/end/", OWNER_ONLY),
    Route("POST", "/api/v1/dialogues/{alice_dialogue}/retry/", OWNER_ONLY),
    Route("GET", "/api/v1/items/", ADMIN_ONLY_LIST),
    Route("GET", "/api/v1/items/{item}/", ADMIN_ONLY_OBJECT),
    Route("GET", "/api/v1/assignments/", every(200)),
    Route("GET", "/api/v1/assignments/{alice_assignment}/", (200, 404, 200, 404)),
    Route("POST", "/api/v1/assignments/{alice_assignment}/submit/", (201, 404, 404, 404), "answer"),
    Route("POST", "/api/v1/assignments/{alice_assignment}/skip/", OWNER_ONLY, {"reason": "unclear"}),
    Route("POST", "/api/v1/assignments/{alice_assignment}/flag/", OWNER_ONLY, {"flag": "broken"}),
    Route("GET", "/api/v1/judgments/", every(200)),
    Route("GET", "/api/v1/judgments/{alice_judgment}/", (200, 404, 200, 200)),
    Route("GET", "/api/v1/annotators/", ADMIN_ONLY_LIST),
    Route("GET", "/api/v1/annotators/{alice}/", ADMIN_ONLY_OBJECT),
    Route("POST", "/api/v1/annotators/{alice}/qualifications/", ADMIN_ONLY_OBJECT, {"track": "safety"}),
    Route("DELETE", "/api/v1/annotators/{alice}/qualifications/{track}/", ADMIN_ONLY_OBJECT),
    Route("GET", "/api/v1/audit/", ADMIN_ONLY_LIST),
    Route("GET", "/api/v1/stats/batches/{batch}/", (404, 404, 200, 404)),
    Route("POST", "/api/v1/stats/batches/{batch}/recompute/", (404, 404, 202, 404)),
    Route("GET", "/api/v1/stats/tracks/{track}/", (404, 404, 200, 404)),
    Route("POST", "/api/v1/stats/tracks/{track}/recompute/", (404, 404, 202, 404)),
    Route("GET", "/api/v1/exports/", (403, 403, 200, 200)),
    Route("POST", "/api/v1/exports/", (403, 403, 201, 201), {"schema": "pairwise_flat", "format": "jsonl"}),
    Route("GET", "/api/v1/exports/{export_erin}/", (404, 404, 200, 200)),
    Route("GET", "/api/v1/exports/{export_admin}/", (404, 404, 200, 404)),
    Route("GET", "/api/v1/exports/{export_erin}/download/", (404, 404, 409, 409)),  # still queued
    Route("GET", "/api/v1/judge-runs/", ADMIN_ONLY_LIST),
    Route(
        "POST", "/api/v1/judge-runs/", (403, 403, 201, 403), {"judge": "{judge}", "batch": "{batch}"}
    ),  # the two items the world's run left
    Route("GET", "/api/v1/judge-runs/{judge_run}/", ADMIN_ONLY_OBJECT),
    Route("GET", "/api/v1/judge-runs/{judge_run}/stats/", ADMIN_ONLY_OBJECT),
]


class _Rollback(Exception):
    pass


def call(world: World, role: str, route: Route) -> Any:
    path = route.path.format(**world.ids)
    body = world.answer if route.body == "answer" else route.body
    if isinstance(body, dict):
        body = {k: _fill(v, world) for k, v in body.items()}
    client = world.clients[role]
    if route.method == "GET":
        return client.get(path)
    if body is None:
        return client.generic(route.method, path)
    if isinstance(body, bytes):
        return client.generic(route.method, path, data=body, content_type=route.content_type)
    return client.generic(route.method, path, data=json.dumps(body), content_type=route.content_type)


def _fill(value: Any, world: World) -> Any:
    """ "{endpoint}" in a body: the id of that object."""
    return int(value.format(**world.ids)) if isinstance(value, str) and value.startswith("{") else value


def test_every_route_gives_every_role_the_expected_status(world: World) -> None:
    wrong = []
    for route in ROUTES:
        expected = dict(zip(ROLES, route.expect, strict=True)) | dict.fromkeys(UNAUTHENTICATED, 401)
        for role, status in expected.items():
            try:
                with transaction.atomic():  # every call meets the same world: undo what it wrote
                    response = call(world, role, route)
                    raise _Rollback
            except _Rollback:
                pass
            if response.status_code != status:
                got = f"{response.status_code}, expected {status}: {response.content[:150]!r}"
                wrong.append(f"{route} as {role}: {got}")
            elif status >= 400:
                error = response.json()
                if set(error) != {"error"} or set(error["error"]) != {"code", "message", "fields"}:
                    wrong.append(f"{route} as {role}: not the error shape: {response.content[:150]!r}")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_every_route() -> None:
    """A new route without a row here fails this test (and so gets its permissions checked)."""
    resolver = get_resolver()
    routes: set[tuple[str, str]] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "view_class"):
                view = pattern.callback.view_class
                if issubclass(view, ApiView):
                    route = prefix + str(pattern.pattern)
                    for method in ("get", "post", "patch", "put", "delete"):
                        if hasattr(view, method):
                            routes.add((method.upper(), route))

    walk(resolver.url_patterns, "/")
    matrix = {(r.method, _pattern(r.path)) for r in ROUTES}
    missing = {(m, p) for m, p in routes if (m, _normal(p)) not in matrix}
    assert len(routes) >= 45 and not missing, sorted(missing)


def _pattern(path: str) -> str:
    parts = ["*" if part.startswith("{") else part for part in path.strip("/").split("/")]
    return "/".join(parts)


def _normal(route: str) -> str:
    parts = ["*" if part.startswith("<") else part for part in route.strip("/").split("/")]
    return "/".join(parts)


def test_every_api_view_declares_its_permissions() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):

        class Careless(ApiView):  # no permission_classes
            def get(self, request: Any) -> Any:  # pragma: no cover
                return None


def test_lists_never_show_another_annotators_work(world: World) -> None:
    bob = world.clients["bob"]
    judgments = bob.get("/api/v1/judgments/").json()["results"]
    assert [j["id"] for j in judgments] == [world.ids["bob_judgment"]]
    mine = bob.get("/api/v1/assignments/").json()["results"]
    assert world.ids["alice_assignment"] not in {a["id"] for a in mine}
    assert len(mine) == 2
    # Even when asked for alice's batch by filter, bob sees only his own.
    filtered = bob.get(f"/api/v1/judgments/?batch={world.ids['batch']}").json()["results"]
    assert [j["id"] for j in filtered] == [world.ids["bob_judgment"]]
    admin = world.clients["admin"].get("/api/v1/judgments/").json()["results"]
    assert {j["id"] for j in admin} == {world.ids["alice_judgment"], world.ids["bob_judgment"]}


def test_schema_and_docs_are_public() -> None:
    client = APIClient()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"openapi" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "script-src 'self'" in docs["Content-Security-Policy"]
    assert b"cdn" not in docs.content.lower()
    assert client.get("/api/docs/?script=").status_code == 200
