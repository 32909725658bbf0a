"""Small pieces the admin pages share: read-only admin, truncated text, rendered untrusted text."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from annotate.core.rendering import render_markdown


def short(text: str, length: int = 80) -> str:
    return Truncator(" ".join(str(text).split())).chars(length)


def rendered_block(text: str) -> SafeString:
    """Untrusted markdown rendered and sanitized, in a scrolling box."""
    return format_html(
        '<div class="rendered-untrusted" style="max-height:24rem;overflow:auto;border:1px solid #ccc;'
        'padding:.5rem;background:#fff">{}</div>',
        render_markdown(text or ""),
    )


def conversation_block(conversation: list[dict[str, Any]]) -> SafeString:
    parts = [
        format_html(
            "<p><strong>{}</strong></p>{}",
            str(m.get("role", "?")).upper(),
            rendered_block(m.get("content", "")),
        )
        for m in conversation or []
    ]
    return format_html("{}", SafeString("".join(parts)))


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows that only services write (judgments, assignments, exports): admins look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False
