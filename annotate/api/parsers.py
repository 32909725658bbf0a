"""A strict JSON parser: malformed input is a 400, never a server error.

orjson refuses NaN and Infinity, numbers that overflow a double, lone surrogates, invalid UTF-8 and
nesting deeper than 1024 levels, each with a JSONDecodeError (a ValueError). NUL characters are valid
JSON but PostgreSQL cannot store them in text or jsonb, so they are refused here, naming where they are.
Bodies are capped at DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads the stream itself, past Django's own check).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def find_nul(value: Any) -> str | None:
    """The dotted path of the first string (or key) that contains a NUL character, else None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, current = stack.pop()
        if isinstance(current, str):
            if "\x00" in current:
                return path or "non_field_errors"
        elif isinstance(current, dict):
            for key, item in current.items():
                child = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return path or "non_field_errors"
                stack.append((child, item))
        elif isinstance(current, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(current))
    return None


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from None
        where = find_nul(data)
        if where is not None:
            raise exceptions.ValidationError({where: ["Text may not contain NUL (\\u0000) characters."]})
        return data
