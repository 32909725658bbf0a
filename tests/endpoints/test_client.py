"""The chat-completions client against the loopback stub: results, timeouts, fault classification, keys."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from annotate.endpoints import client
from tests.stub_openai import Reply, StubOpenAI

MESSAGES = [{"role": "user", "content": "Say hello to the test suite"}]


def target(stub: StubOpenAI, **fields: Any) -> client.Target:
    return client.Target(**{"base_url": stub.base_url, "model": "stub-model", "timeout_s": 5.0, **fields})


def call(stub: StubOpenAI, **fields: Any) -> client.Completion:
    payload = client.build_payload(
        model="stub-model", messages=MESSAGES, temperature=0.3, top_p=0.9, max_tokens=64
    )
    return client.chat_completion(target(stub, **fields), payload, request_id="req-1")


def test_a_completion_comes_back_with_tokens_and_latency(guarded_stub: StubOpenAI) -> None:
    guarded_stub.latency_s = 0.2
    guarded_stub.handler = lambda c: Reply.ok("Hello, **suite**.", prompt_tokens=11, completion_tokens=4)
    completion = call(guarded_stub)
    assert completion.content == "Hello, **suite**."
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 4)
    assert completion.model == "stub-model"
    assert completion.finish_reason == "stop"
    assert 200 <= completion.latency_ms < 2000
    [record] = guarded_stub.records
    assert record.request_id == "req-1"
    assert record.prefix == "/v1"


def test_the_request_carries_the_sampling_parameters(guarded_stub: StubOpenAI) -> None:
    bodies: list[Any] = []
    guarded_stub.handler = lambda c: bodies.append(c.body) or None
    payload = client.build_payload(
        model="m",
        messages=client.build_messages(MESSAGES, system_prompt="Be brief."),
        temperature=0.0,
        top_p=0.5,
        max_tokens=7,
        seed=42,
        extra={"presence_penalty": 0.5, "model": "sneaky", "stream": True},
        reserved={"temperature"},
    )
    client.chat_completion(target(guarded_stub), payload)
    body = bodies[0]
    assert body["model"] == "m" and body["stream"] is False
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.0, 0.5, 7, 42)
    assert body["presence_penalty"] == 0.5
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_a_conversation_with_its_own_system_message_keeps_it() -> None:
    messages = client.build_messages(
        [{"role": "system", "content": "own"}, *MESSAGES], system_prompt="config"
    )
    assert [m["content"] for m in messages] == ["own", MESSAGES[0]["content"]]


def test_a_slow_server_times_out_within_the_endpoint_timeout(guarded_stub: StubOpenAI) -> None:
    guarded_stub.handler = lambda c: Reply.slow(3.0)
    started = time.monotonic()
    with pytest.raises(client.TransientEndpointError, match="Timed out"):
        call(guarded_stub, timeout_s=0.4)
    assert time.monotonic() - started < 2.0


def test_the_deadline_caps_the_timeout(guarded_stub: StubOpenAI) -> None:
    guarded_stub.handler = lambda c: Reply.slow(3.0)
    started = time.monotonic()
    with pytest.raises(client.TransientEndpointError):
        client.chat_completion(target(guarded_stub, timeout_s=60), {"messages": []}, deadline=started + 0.4)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("reply", "transient"),
    [
        (Reply.rate_limited("1"), True),
        (Reply.error(500), True),
        (Reply.error(502), True),
        (Reply.error(503), True),
        (Reply.error(408), True),
        (Reply.reset(), True),
        (Reply.error(400), False),
        (Reply.error(401), False),
        (Reply.error(404), False),
        (Reply.error(422), False),
        (Reply.malformed(), False),
        (Reply(status=200, body=b'{"choices": []}'), False),
        (Reply(status=200, body=b'{"choices": [{"message": {"content": null}}]}'), False),
        (Reply(status=200, body=b"[1, 2]"), False),
        (Reply.ok("   "), False),
        (Reply.redirect("/elsewhere"), False),
    ],
    ids=lambda v: repr(v)[:60] if isinstance(v, Reply) else str(v),
)
def test_faults_are_classified(guarded_stub: StubOpenAI, reply: Reply, transient: bool) -> None:
    guarded_stub.handler = lambda c: reply
    expected = client.TransientEndpointError if transient else client.PermanentEndpointError
    with pytest.raises(expected) as raised:
        call(guarded_stub)
    assert raised.value.transient is transient
    assert len(guarded_stub.records) == 1  # one request: the client never retries by itself


def test_a_refused_connection_is_transient(guarded_stub: StubOpenAI) -> None:
    base_url = guarded_stub.base_url
    guarded_stub.stop()  # nothing listens on that port any more (still the only allowed address)
    with pytest.raises(client.TransientEndpointError, match="Connection failed"):
        client.chat_completion(client.Target(base_url=base_url, model="m", timeout_s=2), {})


def test_retry_after_is_read_from_the_reply(guarded_stub: StubOpenAI) -> None:
    guarded_stub.handler = lambda c: Reply.rate_limited("7")
    with pytest.raises(client.TransientEndpointError) as raised:
        call(guarded_stub)
    assert raised.value.status_code == 429
    assert raised.value.retry_after_s == 7.0


def test_retry_after_accepts_seconds_and_dates_and_is_capped() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert client.parse_retry_after("3", cap_s=60, now=now) == 3.0
    assert client.parse_retry_after("1000", cap_s=60, now=now) == 60.0
    assert (
        client.parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), cap_s=60, now=now)
        == 30
    )
    assert (
        client.parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), cap_s=60, now=now)
        == 0
    )
    assert client.parse_retry_after("soon", cap_s=60, now=now) is None
    assert client.parse_retry_after(None, cap_s=60) is None
    assert client.parse_retry_after("-5", cap_s=60) == 0.0


def test_a_response_over_the_size_limit_is_refused(guarded_stub: StubOpenAI, settings: Any) -> None:
    settings.GENERATION_MAX_RESPONSE_BYTES = 2048
    guarded_stub.handler = lambda c: Reply.ok("x" * 5000)
    with pytest.raises(client.PermanentEndpointError, match="larger than"):
        call(guarded_stub)


def test_the_api_key_is_sent_from_the_environment_and_never_logged_or_raised(
    guarded_stub: StubOpenAI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-THE-SECRET-KEY-4242"
    monkeypatch.setenv("STUB_API_KEY", secret)
    seen: list[str | None] = []

    def handler(c: Any) -> Reply | None:
        seen.append(c.headers.get("authorization"))
        if c.index == 1:  # a server that echoes the key back in its error body
            return Reply.error(401, f"invalid key {secret}")
        if c.index == 2:
            return Reply.error(503, f"overloaded, key {secret}")
        return None

    guarded_stub.handler = handler
    caplog.set_level(logging.DEBUG)
    call(guarded_stub, api_key_env="STUB_API_KEY")
    errors = []
    for _ in range(2):
        with pytest.raises(client.EndpointError) as raised:
            call(guarded_stub, api_key_env="STUB_API_KEY")
        errors.append(raised.value)
    assert seen == [f"Bearer {secret}"] * 3
    for error in errors:
        assert secret not in str(error) and secret not in error.message and secret not in repr(error.args)
        assert "[redacted]" in error.message
    assert caplog.records  # httpx/httpcore did log the requests
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.args)
    assert secret not in caplog.text


def test_a_missing_key_variable_fails_without_a_request(
    guarded_stub: StubOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(client.PermanentEndpointError, match="NO_SUCH_KEY_VAR is not set"):
        call(guarded_stub, api_key_env="NO_SUCH_KEY_VAR")
    assert guarded_stub.records == []


def test_no_authorization_header_without_a_key(guarded_stub: StubOpenAI) -> None:
    seen: list[str | None] = []
    guarded_stub.handler = lambda c: seen.append(c.headers.get("authorization")) or None
    call(guarded_stub)
    assert seen == [None]
