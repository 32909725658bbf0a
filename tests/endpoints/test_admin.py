"""The endpoint admin: the "test endpoint" action and the URL check on save."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from annotate.endpoints.models import ModelEndpoint
from tests import factories
from tests.endpoints.conftest import ConnectGuard, FakeDNS
from tests.stub_openai import Reply, StubOpenAI

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:endpoints_modelendpoint_changelist"
ENDPOINT_FORM = {
    "name": "internal",
    "base_url": "http://vllm.internal.test:8000/v1",
    "model": "m",
    "api_key_env": "",
    "timeout_s": "60",
    "max_concurrency": "4",
    "requests_per_minute": "",
    "enabled": "on",
    "sampling_configs-TOTAL_FORMS": "0",
    "sampling_configs-INITIAL_FORMS": "0",
}


def run_test_action(client: Client, *endpoints: ModelEndpoint) -> list[str]:
    response = client.post(
        reverse(CHANGELIST),
        {"action": "test_endpoints", "_selected_action": [e.pk for e in endpoints]},
    )
    assert response.status_code == 302
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_testing_an_endpoint_shows_the_reply(staff_client: Client, guarded_stub: StubOpenAI) -> None:
    guarded_stub.handler = lambda c: Reply.ok("pong", prompt_tokens=9, completion_tokens=1)
    endpoint = factories.ModelEndpointFactory(name="local-vllm", base_url=guarded_stub.base_url)
    [message] = run_test_action(staff_client, endpoint)
    assert message.startswith("local-vllm: OK in ")
    assert "9+1 tokens" in message and "'pong'" in message
    [record] = guarded_stub.records
    assert record.outcome == "ok"


def test_testing_an_endpoint_shows_the_error(staff_client: Client, guarded_stub: StubOpenAI) -> None:
    guarded_stub.handler = lambda c: Reply.error(503, "warming up")
    endpoint = factories.ModelEndpointFactory(name="cold", base_url=guarded_stub.base_url)
    [message] = run_test_action(staff_client, endpoint)
    assert message.startswith("cold: transient")
    assert "HTTP 503" in message and "warming up" in message


def test_testing_a_refused_endpoint_opens_no_connection(
    staff_client: Client, fake_dns: FakeDNS, connect_guard: ConnectGuard
) -> None:
    endpoint = factories.ModelEndpointFactory(name="meta", base_url="http://169.254.169.254/v1")
    [message] = run_test_action(staff_client, endpoint)
    assert "permanent error: Refused" in message and "metadata" in message
    assert connect_guard.attempts == []


def test_the_admin_form_refuses_a_private_base_url(
    staff_client: Client, fake_dns: FakeDNS, connect_guard: ConnectGuard
) -> None:
    fake_dns.set("vllm.internal.test", "10.1.2.3")
    response = staff_client.post(reverse("admin:endpoints_modelendpoint_add"), ENDPOINT_FORM)
    assert response.status_code == 200
    assert "a private address" in response.content.decode()
    assert not ModelEndpoint.objects.filter(name="internal").exists()
    assert connect_guard.attempts == []


def test_the_admin_form_accepts_an_allowed_host(staff_client: Client, fake_dns: FakeDNS, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_ENDPOINT_HOSTS = ["vllm.internal.test"]
    fake_dns.set("vllm.internal.test", "10.1.2.3")
    response = staff_client.post(reverse("admin:endpoints_modelendpoint_add"), ENDPOINT_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ModelEndpoint.objects.filter(name="internal").exists()
