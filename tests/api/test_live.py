"""Live prompts through the API: start, follow, judge, continue, end, with the same rules as the pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from annotate.assignments.services import guidelines_mark_seen
from annotate.batches.models import Item
from annotate.endpoints import tasks
from tests import factories
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.response_generate, "delay", lambda response_id: None)


@pytest.fixture
def live_stub(settings: Any) -> Iterator[StubOpenAI]:
    """The loopback stub, allowed past the SSRF guard."""
    settings.ALLOWED_ENDPOINT_HOSTS = ["127.0.0.1"]
    with StubOpenAI() as server:
        yield server


def generate(item_id: int) -> None:
    factories.generate_pending(item_id)


def test_a_dialogue_through_the_api(
    api_as: Callable[[Any], APIClient],
    annotator: Any,
    live_stub: StubOpenAI,
    redis_client: Any,
) -> None:
    endpoint = factories.ModelEndpointFactory(base_url=live_stub.base_url, timeout_s=2.0)
    batch = factories.BatchFactory(prompt_source="live")
    batch.sampling_configs.set([factories.SamplingConfigFactory(endpoint=endpoint) for _ in range(2)])
    api = api_as(annotator)
    url = f"/api/v1/batches/{batch.pk}/live/"

    unread = api.post(url, {"prompt": "Hi"}, format="json")
    assert unread.status_code == 409 and unread.json()["error"]["code"] == "guidelines_unread"
    guidelines_mark_seen(annotator=annotator, batch=batch)
    empty = api.post(url, {"prompt": "  "}, format="json")
    assert empty.status_code == 400 and "prompt" in empty.json()["error"]["fields"]
    unknown = api.post(url, {"prompt": "Hi", "colour": "red"}, format="json")
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["fields"]

    started = api.post(
        url, {"prompt": "What is a preference?", "idempotency_key": "api-live-01"}, format="json"
    )
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["turn"]["phase"] == "generating" and body["turn"]["index"] == 0
    assert (body["turn"]["ready"], body["turn"]["total"]) == (0, 2) and body["next_turn"] is None
    replay = api.post(
        url, {"prompt": "What is a preference?", "idempotency_key": "api-live-01"}, format="json"
    )
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == body["id"] and Item.objects.count() == 1

    generate(body["turn"]["item_id"])
    dialogue_url = f"/api/v1/dialogues/{body['id']}/"
    ready = api.get(dialogue_url).json()
    assert ready["turn"]["phase"] == "judging" and ready["turn"]["ready"] == 2, ready["turn"]
    assignment = api.get(f"/api/v1/assignments/{ready['turn']['assignment_id']}/").json()
    chosen = assignment["responses"][0]
    early = api.post(f"{dialogue_url}continue/", {"prompt": "More"}, format="json")
    assert early.status_code == 409 and early.json()["error"]["code"] == "turn_not_judged"
    judged = api.post(
        f"/api/v1/assignments/{assignment['id']}/submit/",
        {"idempotency_key": "api-judge-01", "chosen": chosen["id"], "strength": "better"},
        format="json",
    )
    assert judged.status_code == 201, judged.content
    after = api.get(dialogue_url).json()
    assert after["turn"]["phase"] == "judged" and after["next_turn"] == 1
    assert after["conversation"][-1] == {"role": "assistant", "content": chosen["content"]}

    second = api.post(f"{dialogue_url}continue/", {"prompt": "Tell me more.", "turn": 1}, format="json")
    assert second.status_code == 201 and second.json()["turn"]["index"] == 1
    assert second.json()["conversation"] == [
        {"role": "user", "content": "What is a preference?"},
        {"role": "assistant", "content": chosen["content"]},
        {"role": "user", "content": "Tell me more."},
    ]
    again = api.post(f"{dialogue_url}continue/", {"prompt": "Tell me more.", "turn": 1}, format="json")
    assert again.status_code == 200 and Item.objects.count() == 2
    ended = api.post(f"{dialogue_url}end/")
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert api.post(f"{dialogue_url}retry/").status_code == 200
    assert api.get("/api/v1/dialogues/00000000-0000-0000-0000-000000000000/").status_code == 404
