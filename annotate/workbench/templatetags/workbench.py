from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict[str, Any] | None, key: object) -> Any:
    """`{{ values.safety|get_item:response.id }}`: a dict lookup by a variable key."""
    if not mapping:
        return ""
    return mapping.get(str(key), "")
