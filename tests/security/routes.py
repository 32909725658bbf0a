"""Every route of the app, read from the URL resolver (so a new route is covered without editing tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    path: str  # every <converter:name> filled in: 1, a UUID, or "helpfulness" for str
    view: Any  # the view class, or the function

    def methods(self) -> list[str]:
        if hasattr(self.view, "http_method_names") and isinstance(self.view, type):
            return [m for m in ("get", *WRITE_METHODS) if hasattr(self.view, m)]
        return ["get", "post"]


def _fill(pattern: str) -> str:
    pattern = re.sub(r"<int:\w+>", "1", pattern)
    pattern = re.sub(r"<uuid:\w+>", "00000000-0000-4000-8000-000000000001", pattern)
    pattern = re.sub(r"<slug:\w+>", "x", pattern)
    pattern = re.sub(r"<(?:str:)?\w+>", "helpfulness", pattern)
    return pattern.replace("^", "").replace("$", "")


def all_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                raw = str(pattern.pattern)
                if raw.startswith("^") and ".*" in raw:  # catch-alls (the API's JSON 404)
                    continue
                view = getattr(pattern.callback, "view_class", pattern.callback)
                routes.append(Route(_fill(prefix + raw), view))

    walk(get_resolver().url_patterns, "/")
    return routes
