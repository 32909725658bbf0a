"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks, with fault injection.

    with StubOpenAI(latency_s=0.05) as stub:          # real HTTP on 127.0.0.1:<ephemeral port>, threaded
        endpoint.base_url = stub.base_url             # http://127.0.0.1:<port>/v1
        ...
        stub.completions()                            # Counter: request id -> ok replies delivered
        stub.peak_concurrency()                       # most requests in progress at once

Replies are scripted by a handler: a callable that gets a `Call` (the parsed request, its X-Request-Id and
how many times that id was seen) and returns a `Reply`, or None for the default (a normal completion
after `latency_s`). Faults: `Reply.rate_limited(retry_after)`, `Reply.error(500)`, `Reply.error(503)`,
`Reply.slow(seconds)` (answers after the client's timeout), `Reply.malformed()` (200 with broken JSON),
`Reply.reset()` (closes the connection with a TCP reset, no response), `Reply.redirect(url)`,
`Reply.refusal(text)` (200 whose message has no content but the API's `refusal` field).

`JudgeScript` is a handler that answers as an AI judge (annotate/judges): it reads the labelled responses out
of the judging prompt and answers with the JSON verdict a policy decides (default: the longest response is
better, which does not depend on the display order), or whatever a script returns for a request.

Several endpoints can share one stub: requests are grouped by the path before /chat/completions, so
`stub.endpoint_url("a")` (http://127.0.0.1:<port>/a/v1) and `stub.endpoint_url("b")` are counted apart.
Every request is recorded with its arrival and finish times (time.monotonic()).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = {"127.0.0.1", "::1"}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    content: str | None = None  # for a 200 without `body`: the completion text (None: a default text)
    body: bytes | None = None  # raw body, sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float | None = None  # None: the stub's latency_s
    fault: str | None = None  # "reset" | "malformed" | "slow"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def ok(cls, content: str | None = None, *, delay_s: float | None = None, **tokens: int) -> Reply:
        return cls(content=content, delay_s=delay_s, **tokens)

    @classmethod
    def error(cls, status: int, message: str = "stub error", **headers: str) -> Reply:
        body = json.dumps({"error": {"message": message, "type": "stub", "code": status}}).encode()
        return cls(status=status, body=body, headers=dict(headers), delay_s=0.0)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls.error(429, "rate limited", **headers)

    @classmethod
    def slow(cls, delay_s: float) -> Reply:
        return cls(delay_s=delay_s, fault="slow")

    @classmethod
    def malformed(cls) -> Reply:
        return cls(body=b'{"choices": [{"message": {"content": "cut off', fault="malformed", delay_s=0.0)

    @classmethod
    def reset(cls) -> Reply:
        return cls(fault="reset", delay_s=0.0)

    @classmethod
    def refusal(cls, text: str = "I can't help with that.") -> Reply:
        body = {
            "id": "chatcmpl-refusal",
            "object": "chat.completion",
            "model": "stub",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "refusal": text},
                    "finish_reason": "stop",
                }
            ],
        }
        return cls(body=json.dumps(body).encode())

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status=status, body=b"", headers={"Location": location}, delay_s=0.0)


@dataclass(frozen=True)
class Call:
    """One request as the handler sees it."""

    index: int
    prefix: str  # the path before /chat/completions, e.g. "/v1" or "/a/v1"
    request_id: str | None
    attempt: int  # 1 for the first request with this request id, 2 for the second, ...
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class Record:
    index: int
    prefix: str
    request_id: str | None
    arrival: float
    finish: float | None = None
    status: int | None = None
    outcome: str = "in_progress"  # ok | error | slow | malformed | reset | client_gone | bad_request
    content: str | None = None


Handler = Callable[[Call], Reply | None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of new connections must not hit the default backlog of 5

    stub: StubOpenAI


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real servers (uvicorn, vLLM, nginx) set it. Without it the body, written after the
    # headers, waits for the client's ACK of the headers (Nagle), which the client delays by up to 40 ms
    # (delayed ACK): every keep-alive response took ~40 ms more than the configured latency.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def do_GET(self) -> None:
        self._send(404, b'{"error": "not found"}', {})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.server.stub._serve(self, raw)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST: the client sees a reset, no response.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()
        self.connection.close()


class StubOpenAI:
    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        handler: Handler | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError("the stub only ever listens on a loopback address")
        self.host, self._port = host, port
        self.latency_s = latency_s
        self.handler = handler
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._seen: Counter[str] = Counter()
        self._completions: Counter[str] = Counter()
        self._active: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()
        self._active_total = 0
        self._peak_total = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> StubOpenAI:
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _RequestHandler)
        server.stub = self
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StubOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def endpoint_url(self, name: str) -> str:
        return f"{self.url}/{name}/v1"

    # --- what happened --------------------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def completions(self) -> Counter[str]:
        """Successful completions delivered, per request id (X-Request-Id)."""
        with self._lock:
            return Counter(self._completions)

    def peak_concurrency(self, prefix: str | None = None) -> int:
        """The most requests in progress at once, for one endpoint prefix (e.g. "/a/v1") or all."""
        with self._lock:
            return self._peak[prefix] if prefix is not None else self._peak_total

    def active(self) -> int:
        with self._lock:
            return self._active_total

    def reset_stats(self) -> None:
        with self._lock:
            self._records.clear()
            self._seen.clear()
            self._completions.clear()
            self._peak.clear()
            self._peak_total = self._active_total

    def wait_until(self, predicate: Callable[[StubOpenAI], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    # --- serving --------------------------------------------------------------------------------------

    def _serve(self, request: _RequestHandler, raw: bytes) -> None:
        path = request.path.split("?", 1)[0]
        suffix = "/chat/completions"
        headers = {k.lower(): v for k, v in request.headers.items()}
        request_id = headers.get("x-request-id")
        prefix = path[: -len(suffix)] if path.endswith(suffix) else path
        with self._lock:
            index = len(self._records)
            record = Record(index=index, prefix=prefix, request_id=request_id, arrival=time.monotonic())
            self._records.append(record)
            attempt = 1
            if request_id:
                self._seen[request_id] += 1
                attempt = self._seen[request_id]
            self._active[prefix] += 1
            self._active_total += 1
            self._peak[prefix] = max(self._peak[prefix], self._active[prefix])
            self._peak_total = max(self._peak_total, self._active_total)
        try:
            self._respond(
                request,
                record,
                path.endswith(suffix),
                raw,
                Call(index, prefix, request_id, attempt, headers, None),
            )
        finally:
            with self._lock:
                self._active[prefix] -= 1
                self._active_total -= 1
                record.finish = time.monotonic()

    def _respond(
        self, request: _RequestHandler, record: Record, known_path: bool, raw: bytes, call: Call
    ) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not known_path or not isinstance(body, dict):
            record.status, record.outcome = 400 if known_path else 404, "bad_request"
            self._write(request, record, record.status, b'{"error": {"message": "bad request"}}', {})
            return
        call = Call(call.index, call.prefix, call.request_id, call.attempt, call.headers, body)
        try:
            reply = (self.handler(call) if self.handler else None) or Reply.ok()
        except Exception as exc:  # noqa: BLE001 - a broken script answers 500 instead of killing the server
            reply = Reply.error(500, f"stub handler raised {exc!r}")
        delay = self.latency_s if reply.delay_s is None else reply.delay_s
        if delay > 0:
            time.sleep(delay)
        if reply.fault == "reset":
            record.outcome = "reset"
            with contextlib.suppress(OSError):
                request._reset()
            return
        status = reply.status
        if reply.body is not None:
            payload = reply.body
        else:
            content = (
                reply.content
                if reply.content is not None
                else f"Stub answer #{call.index} ({call.request_id})"
            )
            prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
            payload = json.dumps(
                {
                    "id": f"chatcmpl-{call.index}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "stub"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": reply.prompt_tokens
                        if reply.prompt_tokens is not None
                        else prompt_words,
                        "completion_tokens": (
                            reply.completion_tokens
                            if reply.completion_tokens is not None
                            else len(content.split())
                        ),
                        "total_tokens": 0,
                    },
                }
            ).encode()
            record.content = content
        record.status = status
        if reply.fault in {"slow", "malformed"}:
            record.outcome = reply.fault
        elif status == 200:
            record.outcome = "ok"
        else:
            record.outcome = "error"
        delivered = self._write(request, record, status, payload, reply.headers)
        if delivered and record.outcome == "ok" and call.request_id:
            with self._lock:
                self._completions[call.request_id] += 1

    @staticmethod
    def _write(
        request: _RequestHandler, record: Record, status: int, body: bytes, headers: dict[str, str]
    ) -> bool:
        try:
            request._send(status, body, headers)
            return True
        except OSError:
            record.outcome = "client_gone"
            request.close_connection = True
            return False


# --- Answering as an AI judge ------------------------------------------------------------------------------

_RESPONSE_BLOCK = re.compile(r'<response label="([A-I])">\n(.*?)\n</response>', re.DOTALL)


@dataclass(frozen=True)
class JudgeRequest:
    """A judging request as the stub reads it: the responses by label, in the order shown."""

    call: Call
    responses: dict[str, str]  # label -> text, in display order
    ranking: bool
    safety: bool
    retry: bool  # the judge is asked again after an unusable answer

    @property
    def labels(self) -> list[str]:
        return list(self.responses)

    def label_of(self, marker: str) -> str:
        """The label of the response whose text contains `marker`."""
        return next(label for label, text in self.responses.items() if marker in text)

    def answer(
        self,
        *,
        preferred: str | None = None,
        strength: str = "better",
        ranking: list[str] | None = None,
        safety: dict[str, str] | None = None,
        rationale: str = "Scripted by the stub.",
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ranking:
            out["ranking"] = ranking or self.labels
        else:
            out["preferred"] = preferred or self.labels[0]
            out["strength"] = strength
        if self.safety:
            out["safety"] = safety or {
                label: ("unsafe" if "UNSAFE" in text else "safe") for label, text in self.responses.items()
            }
        out["rationale"] = rationale
        return out


def parse_judge_request(call: Call) -> JudgeRequest | None:
    messages = (call.body or {}).get("messages") or []
    if len(messages) < 2:
        return None
    system = str(messages[0].get("content", ""))
    responses = dict(_RESPONSE_BLOCK.findall(str(messages[1].get("content", ""))))
    if not responses:
        return None
    return JudgeRequest(
        call=call,
        responses=responses,
        ranking='"ranking":' in system,
        safety='"safety":' in system,
        retry=len(messages) > 2,
    )


def prefer_longest(request: JudgeRequest) -> dict[str, Any]:
    """A position-consistent judge: longer is better (ties by text), strength from the length ratio."""
    order = sorted(
        request.labels, key=lambda label: (-len(request.responses[label]), request.responses[label])
    )
    if request.ranking:
        return request.answer(ranking=order)
    best, other = (len(request.responses[label]) for label in order[:2])
    ratio = best / max(1, other)
    strength = (
        "significantly_better" if ratio >= 2 else "better" if ratio >= 1.5 else "slightly_better"
        if ratio > 1 else "negligibly_better_or_unsure"
    )  # fmt: skip
    return request.answer(preferred=order[0], strength=strength)


def prefer_first_shown(request: JudgeRequest) -> dict[str, Any]:
    """A judge with total position bias: whatever is shown first wins (inconsistent across the swap)."""
    return request.answer(preferred=request.labels[0], strength="slightly_better", ranking=request.labels)


JudgeDecision = Reply | dict[str, Any] | str | None


class JudgeScript:
    """Stub handler answering as a judge. `decide(request)` returns a dict (sent as the JSON verdict), a
    string (sent as the completion text, e.g. malformed JSON), a Reply (any fault), or None (the default
    policy). Requests that are not judging prompts get the stub's default completion."""

    def __init__(
        self,
        decide: Callable[[JudgeRequest], JudgeDecision] | None = None,
        *,
        default: Callable[[JudgeRequest], dict[str, Any]] = prefer_longest,
    ) -> None:
        self.decide = decide
        self.default = default
        self.requests: list[JudgeRequest] = []
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> Reply | None:
        request = parse_judge_request(call)
        if request is None:
            return None
        with self._lock:
            self.requests.append(request)
        decision = self.decide(request) if self.decide else None
        if decision is None:
            decision = self.default(request)
        if isinstance(decision, Reply):
            return decision
        if isinstance(decision, dict):
            return Reply.ok(json.dumps(decision))
        return Reply.ok(str(decision))
