"""A whole live dialogue over HTTP with a real Celery worker on the real Redis broker generating the
responses from the loopback stub: write, wait on the status fragment as htmx does, judge, continue,
judge again, end."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from annotate.assignments.models import Assignment
from annotate.batches.models import Dialogue, DialogueStatus, Item, Response, ResponseStatus
from tests import factories
from tests.generation.conftest import Worker
from tests.stub_openai import Call, Reply, StubOpenAI

pytestmark = pytest.mark.celery_worker
HTMX = {"HTTP_HX_REQUEST": "true"}
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def wait_for_item_page(client: Client, dialogue: Dialogue, worker: Worker, timeout: float = 30.0) -> str:
    """Poll the status fragment every 0.2 s (the page does every 1 s) until it sends us to the item."""
    url = reverse("workbench:live_status", args=[dialogue.pk])
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(url, **HTMX)
        if response.get("HX-Redirect"):
            return response["HX-Redirect"]
        body = response.content.decode()
        seen.append(body[body.find("<strong>") : body.find("</strong>")])
        if worker.proc is not None and worker.proc.poll() is not None:
            raise AssertionError(f"worker died:\n{worker.log()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"responses not ready after {timeout}s; fragments said {seen[-3:]}")


def test_a_live_dialogue_through_a_real_worker(
    start_worker: Callable[..., Worker], stub: StubOpenAI, transactional_db: None
) -> None:
    def answer(call: Call) -> Reply:
        last = call.body["messages"][-1]["content"]
        return Reply.ok(f"Answer from {call.body['model']} to: {last}", delay_s=0.05)

    stub.handler = answer
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, model="stub-13b", timeout_s=5.0)
    configs = [factories.SamplingConfigFactory(endpoint=endpoint, label=f"t{i}") for i in range(3)]
    batch = factories.BatchFactory(prompt_source="live", mode="ranking", responses_per_item=3, guidelines="")
    batch.sampling_configs.set(configs)
    user = factories.annotator(username="wendy")
    client = Client()
    client.force_login(user)
    worker = start_worker("live", concurrency=4)

    prompt_url = reverse("workbench:live_prompt", args=[batch.pk])
    assert client.get(reverse("workbench:batch", args=[batch.pk]))["Location"] == prompt_url
    created = client.post(prompt_url, {"prompt": "Turn one?", "idempotency_key": "worker-key-01"})
    dialogue = Dialogue.objects.get()
    assert created["Location"] == reverse("workbench:live_dialogue", args=[dialogue.pk])

    item_url = wait_for_item_page(client, dialogue, worker)
    turn0 = Item.objects.get(dialogue=dialogue, turn_index=0)
    lease0 = Assignment.objects.get(item=turn0)
    assert item_url == reverse("workbench:assignment", args=[lease0.pk])
    assert client.get(item_url).status_code == 200
    ranking = [int(p) for p in lease0.positions]
    judged = client.post(
        reverse("workbench:submit", args=[lease0.pk]),
        {"idempotency_key": "worker-judge-1", "ranking": ",".join(map(str, ranking))},
        **FETCH,
    )
    assert judged["X-Navigate"] == reverse("workbench:live_dialogue", args=[dialogue.pk]), judged.content[
        :300
    ]

    client.post(reverse("workbench:live_continue", args=[dialogue.pk]), {"prompt": "Turn two?", "turn": "1"})
    wait_for_item_page(client, dialogue, worker)
    turn1 = Item.objects.get(dialogue=dialogue, turn_index=1)
    top = Response.objects.get(pk=ranking[0])
    assert turn1.conversation == [
        {"role": "user", "content": "Turn one?"},
        {"role": "assistant", "content": top.content},
        {"role": "user", "content": "Turn two?"},
    ]
    lease1 = Assignment.objects.get(item=turn1)
    order1 = [int(p) for p in lease1.positions]
    client.post(
        reverse("workbench:submit", args=[lease1.pk]),
        {"idempotency_key": "worker-judge-2", "ranking": ",".join(map(str, order1))},
        **FETCH,
    )
    client.post(reverse("workbench:live_end", args=[dialogue.pk]))
    assert Dialogue.objects.get().status == DialogueStatus.ENDED
    # Every response generated once, and the second turn's requests carried the whole conversation.
    assert Response.objects.filter(item__dialogue=dialogue, status=ResponseStatus.OK).count() == 6
    assert sum(stub.completions().values()) == 6
    turn_two_calls = [r for r in stub.records if r.content and "Turn two?" in r.content]
    assert len(turn_two_calls) == 3
