"""The SSRF guard: refused URLs never reach a socket; allowed ones connect to the address that was checked."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from annotate.endpoints import client, ssrf
from annotate.endpoints.models import ModelEndpoint
from tests.endpoints.conftest import ConnectGuard, FakeDNS
from tests.stub_openai import Reply, StubOpenAI

REFUSED_URLS = [
    "http://127.0.0.1:{port}/v1",
    "http://localhost:{port}/v1",
    "http://10.0.0.1/v1",
    "http://192.168.1.20:8000/v1",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:{port}/v1",
    "http://[fd00:ec2::254]/latest",
    "http://100.100.100.200/v1",
    "http://[::ffff:127.0.0.1]:{port}/v1",
    "http://2130706433:{port}/v1",  # 127.0.0.1 as one decimal number
    "http://0.0.0.0:{port}/v1",
    "http://224.0.0.1/v1",
    "http://private.example.test/v1",  # fake DNS: 10.20.30.40
    "http://mixed.example.test/v1",  # fake DNS: one public and one private answer
]


@pytest.fixture
def dns(fake_dns: FakeDNS) -> FakeDNS:
    fake_dns.set("private.example.test", "10.20.30.40")
    fake_dns.set("mixed.example.test", ["93.184.216.34", "10.0.0.7"])
    fake_dns.set("public.example.test", "93.184.216.34")
    fake_dns.set("metadata.example.test", "169.254.169.254")
    return fake_dns


def _endpoint(url: str, **fields: Any) -> ModelEndpoint:
    return ModelEndpoint(name="e", base_url=url, model="m", timeout_s=2.0, **fields)


@pytest.mark.parametrize("template", REFUSED_URLS)
def test_private_loopback_and_metadata_urls_are_refused_on_save_and_on_request(
    template: str, dns: FakeDNS, connect_guard: ConnectGuard, stub: StubOpenAI
) -> None:
    url = template.format(port=stub.port)
    with pytest.raises(ValidationError) as saved:
        _endpoint(url).clean()
    assert "base_url" in saved.value.message_dict

    with pytest.raises(client.PermanentEndpointError, match="Refused"):
        client.chat_completion(client.Target(base_url=url, model="m", timeout_s=2.0), {"messages": []})
    assert connect_guard.attempts == []
    assert stub.records == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.test/v1",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "http://user:secret@public.example.test/v1",
        "http:///v1",
    ],
)
def test_only_plain_http_urls_are_accepted(url: str, dns: FakeDNS, connect_guard: ConnectGuard) -> None:
    with pytest.raises(ssrf.EndpointRefused):
        ssrf.validate_url(url)
    with pytest.raises(client.PermanentEndpointError):
        client.chat_completion(client.Target(base_url=url, model="m"), {"messages": []})
    assert connect_guard.attempts == []


def test_a_public_host_passes_the_save_time_check(dns: FakeDNS) -> None:
    _endpoint("https://public.example.test/v1").clean()
    assert ssrf.validate_url("https://public.example.test/v1").port == 443


def test_allowed_hosts_may_use_loopback(guarded_stub: StubOpenAI) -> None:
    url = guarded_stub.base_url
    _endpoint(url).clean()
    completion = client.chat_completion(client.Target(base_url=url, model="m", timeout_s=5), {"messages": []})
    assert completion.content


def test_allowing_one_host_does_not_allow_another_spelling_of_it(
    settings: Any, dns: FakeDNS, connect_guard: ConnectGuard, stub: StubOpenAI
) -> None:
    settings.ALLOWED_ENDPOINT_HOSTS = ["localhost"]
    with pytest.raises(client.PermanentEndpointError, match=r"127\.0\.0\.1"):
        client.chat_completion(client.Target(base_url=f"http://127.1:{stub.port}/v1", model="m"), {})
    assert connect_guard.attempts == []


def test_metadata_addresses_are_refused_even_for_an_allowed_host(
    settings: Any, dns: FakeDNS, connect_guard: ConnectGuard
) -> None:
    settings.ALLOWED_ENDPOINT_HOSTS = ["metadata.example.test", "169.254.169.254"]
    for url in ("http://metadata.example.test/v1", "http://169.254.169.254/v1"):
        with pytest.raises(ssrf.EndpointRefused, match="metadata"):
            ssrf.validate_url(url)
        with pytest.raises(client.PermanentEndpointError, match="metadata"):
            client.chat_completion(client.Target(base_url=url, model="m"), {})
    assert connect_guard.attempts == []


def test_dns_rebinding_after_the_save_check_is_refused_at_connect_time(
    dns: FakeDNS, connect_guard: ConnectGuard, stub: StubOpenAI
) -> None:
    # Public when the admin saves the endpoint, loopback when the worker connects.
    dns.set("rebind.example.test", ["93.184.216.34"], ["127.0.0.1"])
    url = f"http://rebind.example.test:{stub.port}/v1"
    _endpoint(url).clean()
    with pytest.raises(client.PermanentEndpointError, match="loopback"):
        client.chat_completion(client.Target(base_url=url, model="m", timeout_s=2), {})
    assert connect_guard.attempts == []
    assert stub.records == []


def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(
    settings: Any, dns: FakeDNS, connect_guard: ConnectGuard, stub: StubOpenAI
) -> None:
    # One lookup per connection: the address it returned is the one connected to. A second lookup would
    # get 10.66.66.66 (refused by the guard, and a violation of this test).
    settings.ALLOWED_ENDPOINT_HOSTS = ["pinned.example.test"]
    dns.set("pinned.example.test", ["127.0.0.1"], ["10.66.66.66"])
    connect_guard.allowed.add(("127.0.0.1", stub.port))
    url = f"http://pinned.example.test:{stub.port}/v1"
    hosts: list[str | None] = []
    stub.handler = lambda call: hosts.append(call.headers.get("host")) or None
    client.chat_completion(client.Target(base_url=url, model="m", timeout_s=5), {"messages": []})
    assert dns.lookups.count("pinned.example.test") == 1
    assert connect_guard.attempts == [("127.0.0.1", stub.port)]
    assert hosts == [f"pinned.example.test:{stub.port}"]  # the name, not the IP, in the Host header


def test_a_redirect_to_a_private_address_is_not_followed(
    guarded_stub: StubOpenAI, connect_guard: ConnectGuard
) -> None:
    guarded_stub.handler = lambda call: Reply.redirect("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(client.PermanentEndpointError, match="redirect"):
        client.chat_completion(client.Target(base_url=guarded_stub.base_url, model="m", timeout_s=5), {})
    assert len(guarded_stub.records) == 1
    assert set(connect_guard.attempts) == {("127.0.0.1", guarded_stub.port)}


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("127.0.0.53", True),
        ("172.16.5.4", True),
        ("100.64.0.1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("ff02::1", True),
        ("240.0.0.1", True),
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 form of 169.254.169.254
        ("2002:7f00:1::", True),  # 6to4 form of 127.0.0.1
        ("168.63.129.16", True),  # Azure wire server: public, but a metadata address
    ],
)
def test_address_classification(address: str, refused: bool, settings: Any) -> None:
    import ipaddress

    settings.ALLOWED_ENDPOINT_HOSTS = []
    if refused:
        with pytest.raises(ssrf.EndpointRefused):
            ssrf.check_address("h.test", ipaddress.ip_address(address))
    else:
        ssrf.check_address("h.test", ipaddress.ip_address(address))
