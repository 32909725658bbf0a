"""HTTP client for OpenAI-compatible `/v1/chat/completions` servers (vLLM, TGI, llama.cpp, Ollama, hosted).

One call, one request: this module never retries (the Celery task is the only retry layer) and classifies
every failure as transient (worth retrying later: connection errors, timeouts, 408, 429, 5xx) or
permanent (other 4xx, redirects, malformed bodies, refused addresses).

Safety:
- every timeout is set (connect, read, write, pool) from the endpoint's timeout_s, capped by the caller's
  deadline, and the whole exchange, body included, must end within the read timeout of the last byte;
- connections go through `PinnedBackend`, which resolves the host once, checks every address with
  ssrf.resolve and connects to a checked address (see ssrf.py); redirects are never followed;
- environment proxies and .netrc are ignored (`trust_env=False`): a proxy would resolve the name itself;
- the API key is read from the environment variable the endpoint names, sent as a Bearer header, and
  scrubbed from every error text this module produces (a server could echo it back in an error body).
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
import orjson
from django.conf import settings

from annotate.endpoints import ssrf

logger = logging.getLogger(__name__)

USER_AGENT = "annotate-generation/1"
# Statuses worth another try later: request timeout, too many requests, and server-side errors.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
ERROR_EXCERPT_CHARS = 300


class EndpointError(Exception):
    """A failed call. `transient` says whether trying again later may succeed."""

    transient: bool = False

    def __init__(self, message: str, *, status_code: int | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class TransientEndpointError(EndpointError):
    transient = True


class PermanentEndpointError(EndpointError):
    transient = False


class RefusedError(PermanentEndpointError):
    """The model declined in the API's own `message.refusal` field instead of writing content."""

    def __init__(self, refusal: str) -> None:
        super().__init__(f"The model refused: {refusal[:ERROR_EXCERPT_CHARS]}")
        self.refusal = refusal


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    finish_reason: str | None


@dataclass(frozen=True)
class Target:
    """What a call needs to know about an endpoint (plain values, so the client has no ORM dependency)."""

    base_url: str
    model: str
    api_key_env: str = ""
    timeout_s: float = 60.0

    @classmethod
    def of(cls, endpoint: Any) -> Target:
        return cls(
            base_url=endpoint.base_url,
            model=endpoint.model,
            api_key_env=endpoint.api_key_env or "",
            timeout_s=float(endpoint.timeout_s),
        )


# --------------------------------------------------------------------------------------------------
# Connection pinning
# --------------------------------------------------------------------------------------------------


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore network backend that connects only to addresses ssrf.resolve has checked.

    httpcore hands us the URL's host name; we resolve it once, refuse it if any address is refused,
    and open the TCP connection to the checked IP ourselves. TLS (start_tls) still runs on the stream with
    the host name as server_hostname, so SNI and certificate verification are unchanged; the Host header
    is built from the URL, so it is unchanged too.
    """

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = ssrf.resolve(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise ssrf.EndpointRefused("Unix sockets are not allowed.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool built on PinnedBackend, with no proxy."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx.HTTPTransport does not take a network backend, so the pool it built is replaced by the
        # same pool on our backend (httpcore's public ConnectionPool API, httpx's `_pool` slot).
        old_pool = self._pool
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=PinnedBackend(),
        )
        old_pool.close()


_client_lock = threading.Lock()
_client: tuple[int, httpx.Client] | None = None


def shared_client() -> httpx.Client:
    """One pooled client per process (created after a fork, never inherited): keep-alive connections
    save a TCP and TLS handshake per generation. Connections are pinned when opened (PinnedBackend)."""
    global _client
    pid = os.getpid()
    with _client_lock:
        if _client is None or _client[0] != pid:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)
            client = httpx.Client(
                transport=PinnedTransport(limits=limits),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
            _client = (pid, client)
        return _client[1]


# --------------------------------------------------------------------------------------------------
# Requests and responses
# --------------------------------------------------------------------------------------------------


def completions_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/chat/completions"


def build_messages(
    conversation: Sequence[Mapping[str, Any]], system_prompt: str = ""
) -> list[dict[str, str]]:
    """The conversation as role/content messages, after the config's system prompt unless the
    conversation brings its own (then that one is part of the prompt being judged and wins)."""
    messages = [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in conversation]
    if system_prompt and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def build_payload(
    *,
    model: str,
    messages: list[dict[str, str]],
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
    reserved: Iterable[str] = (),
) -> dict[str, Any]:
    reserved_keys = set(reserved) | {"model", "messages", "stream"}
    payload: dict[str, Any] = {k: v for k, v in (extra or {}).items() if k not in reserved_keys}
    payload.update({"model": model, "messages": messages, "stream": False})
    for key, value in (
        ("temperature", temperature),
        ("top_p", top_p),
        ("max_tokens", max_tokens),
        ("seed", seed),
    ):
        if value is not None:
            payload[key] = value
    return payload


def payload_for_config(config: Any, conversation: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The request body for a SamplingConfig (its endpoint's model, its sampling parameters)."""
    return build_payload(
        model=config.endpoint.model,
        messages=build_messages(conversation, config.system_prompt),
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed,
        extra=config.extra_params if isinstance(config.extra_params, dict) else {},
        reserved=config.RESERVED_PARAMS,
    )


def parse_retry_after(value: str | None, *, cap_s: float, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; capped; None if absent or
    unreadable (then the caller's own backoff applies)."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None = None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        return None
    return min(max(0.0, seconds), cap_s)


def redact(text: str, secret: str | None) -> str:
    if secret and secret in text:
        text = text.replace(secret, "[redacted]")
    return text


def _excerpt(body: bytes) -> str:
    text = body[: ERROR_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text[:ERROR_EXCERPT_CHARS] + ("..." if len(text) > ERROR_EXCERPT_CHARS else "")


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value >= 0 else None


def parse_completion(body: bytes, *, latency_ms: int, default_model: str) -> Completion:
    """The first choice's message of a chat-completions body; PermanentEndpointError if it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PermanentEndpointError(f"Malformed response: not JSON ({_excerpt(body)!r}).") from None
    if not isinstance(data, dict):
        raise PermanentEndpointError("Malformed response: the body is not a JSON object.")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise PermanentEndpointError("Malformed response: no choices.")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    refusal = message.get("refusal") if isinstance(message, dict) else None
    if isinstance(refusal, str) and refusal.strip() and not (isinstance(content, str) and content.strip()):
        raise RefusedError(refusal)
    if not isinstance(content, str):
        raise PermanentEndpointError("Malformed response: the first choice has no text content.")
    if not content.strip():
        raise PermanentEndpointError("The endpoint returned an empty completion.")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    finish = choices[0].get("finish_reason")
    model = data.get("model")
    return Completion(
        content=content,
        model=model if isinstance(model, str) and model else default_model,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        finish_reason=finish if isinstance(finish, str) else None,
    )


def chat_completion(
    target: Target,
    payload: Mapping[str, Any],
    *,
    request_id: str | None = None,
    deadline: float | None = None,
    client: httpx.Client | None = None,
) -> Completion:
    """POST one chat completion and return it, or raise Transient/PermanentEndpointError.

    `deadline` (time.monotonic()) caps every timeout, so that a call never outlives its Celery task's
    time budget even when the endpoint allows more. `request_id` goes out as X-Request-Id (harmless to
    servers that ignore it; lets a server's logs and our stub match requests to responses).
    """
    api_key = os.environ.get(target.api_key_env) if target.api_key_env else None
    try:
        return _chat_completion(target, payload, api_key, request_id, deadline, client or shared_client())
    except EndpointError as exc:
        exc.message = redact(exc.message, api_key)
        exc.args = (exc.message,)
        raise


def _chat_completion(
    target: Target,
    payload: Mapping[str, Any],
    api_key: str | None,
    request_id: str | None,
    deadline: float | None,
    client: httpx.Client,
) -> Completion:
    if target.api_key_env and not api_key:
        raise PermanentEndpointError(f"The environment variable {target.api_key_env} is not set.")
    try:
        ssrf.parse_url(target.base_url)
    except ssrf.EndpointRefused as exc:
        raise PermanentEndpointError(f"Refused: {exc}") from None

    timeout_s = float(target.timeout_s)
    if deadline is not None:
        timeout_s = min(timeout_s, deadline - time.monotonic())
        if timeout_s <= 0.05:
            raise TransientEndpointError("No time left for the request within this task's time limit.")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if request_id:
        headers["X-Request-Id"] = request_id
    max_bytes = int(getattr(settings, "GENERATION_MAX_RESPONSE_BYTES", 8_000_000))
    body_bytes = orjson.dumps(dict(payload))
    started = time.monotonic()
    stop_at = started + timeout_s
    try:
        with client.stream(
            "POST",
            completions_url(target.base_url),
            content=body_bytes,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise PermanentEndpointError(f"Response larger than {max_bytes} bytes.")
                chunks.append(chunk)
                if time.monotonic() > stop_at:
                    raise TransientEndpointError(f"Timed out after {timeout_s:.1f}s reading the response.")
            body = b"".join(chunks)
            status = response.status_code
            retry_after_header = response.headers.get("Retry-After")
    except ssrf.EndpointRefused as exc:
        raise PermanentEndpointError(f"Refused: {exc}") from None
    except httpx.TimeoutException as exc:
        raise TransientEndpointError(f"Timed out after {timeout_s:.1f}s ({type(exc).__name__}).") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        # Connection refused or reset, server gone before answering: the server may be restarting.
        raise TransientEndpointError(f"Connection failed ({type(exc).__name__}: {exc}).") from None
    except httpx.DecodingError as exc:
        raise PermanentEndpointError(f"Undecodable response ({exc}).") from None
    except httpx.HTTPError as exc:
        raise PermanentEndpointError(f"HTTP error ({type(exc).__name__}: {exc}).") from None
    latency_ms = int((time.monotonic() - started) * 1000)

    if 300 <= status < 400:
        raise PermanentEndpointError(
            f"HTTP {status}: redirects are not followed (check the base URL).", status_code=status
        )
    if status >= 400:
        cap = float(getattr(settings, "GENERATION_RETRY_AFTER_MAX_S", 300))
        retry_after = parse_retry_after(retry_after_header, cap_s=cap)
        message = f"HTTP {status}: {_excerpt(body)}" if body else f"HTTP {status}"
        if status in TRANSIENT_STATUSES or status >= 500:
            raise TransientEndpointError(message, status_code=status, retry_after_s=retry_after)
        raise PermanentEndpointError(message, status_code=status)
    if status != 200:
        raise PermanentEndpointError(f"Unexpected HTTP {status}.", status_code=status)
    return parse_completion(body, latency_ms=latency_ms, default_model=target.model)
