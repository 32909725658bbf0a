"""Fixtures for talking to endpoints safely in tests: the loopback stub, fake DNS, and a connect guard.

No test here ever opens a connection anywhere but the stub's port on 127.0.0.1: names resolve through
`fake_dns` (never real DNS), and `connect_guard` records every socket connect and refuses (and fails the
test for) any address that was not explicitly allowed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stub_openai import StubOpenAI

_real_getaddrinfo = socket.getaddrinfo


class FakeDNS:
    """Answers for host names; IP literals are parsed (numeric only, no lookup); anything else fails."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def set(self, name: str, *answers: list[str] | str) -> None:
        """`set("a.test", "10.0.0.1")`: always that; `set("a.test", ["1.2.3.4"], ["127.0.0.1"])`: first
        lookup gets the first list, later ones the next (the last one repeats), to script rebinding."""
        self.answers[name.lower()] = [[a] if isinstance(a, str) else list(a) for a in answers]

    def __call__(self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(name)
        scripted = self.answers.get(name.lower().rstrip("."))
        if scripted is None:
            try:  # IP literals (also odd forms like 2130706433) are parsed locally, never looked up
                return _real_getaddrinfo(name, port, family, type, proto, flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                raise socket.gaierror(socket.EAI_NONAME, f"fake DNS has no answer for {name}") from None
        seen = sum(1 for n in self.lookups if n.lower().rstrip(".") == name.lower().rstrip("."))
        addresses = scripted[min(seen, len(scripted)) - 1]
        infos = []
        for address in addresses:
            fam = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr: tuple[Any, ...] = (
                (address, int(port or 0), 0, 0) if fam == socket.AF_INET6 else (address, int(port or 0))
            )
            infos.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return infos


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    dns = FakeDNS()
    dns.set(
        "localhost",
        "127.0.0.1",
    )
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns


class ConnectGuard:
    def __init__(self) -> None:
        self.allowed: set[tuple[str, int]] = set()
        self.attempts: list[tuple[str, int]] = []
        self.violations: list[tuple[str, int]] = []

    def check(self, address: Any) -> None:
        if not (isinstance(address, tuple) and len(address) >= 2):
            return  # unix sockets and the like: not network connections
        target = (str(address[0]), int(address[1]))
        self.attempts.append(target)
        if target not in self.allowed:
            self.violations.append(target)
            raise ConnectionRefusedError(f"test connect guard: {target} is not an allowed address")


@pytest.fixture
def connect_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectGuard]:
    """Records every socket connect; any address not in `guard.allowed` is refused and fails the test."""
    guard = ConnectGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(sock: socket.socket, address: Any) -> None:
        guard.check(address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        guard.check(address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    assert not guard.violations, f"connections attempted to refused addresses: {guard.violations}"


@pytest.fixture
def stub() -> Iterator[StubOpenAI]:
    with StubOpenAI() as server:
        yield server


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    """The stub listens on 127.0.0.1, which the SSRF guard refuses unless allowed explicitly."""
    settings.ALLOWED_ENDPOINT_HOSTS = ["127.0.0.1"]


@pytest.fixture
def guarded_stub(stub: StubOpenAI, connect_guard: ConnectGuard, allow_loopback: None) -> StubOpenAI:
    """The stub, with the connect guard allowing exactly its address and nothing else."""
    connect_guard.allowed.add(("127.0.0.1", stub.port))
    return stub
