"""Query strings of list views: declared filters, ordering from an allow-list, and nothing else.

Every parameter a list view accepts is declared: its filters as a serializer (typed, bounded), its
orderings as a tuple of public names. Anything else (`?ordering=annotator__password`,
`?annotator__password__startswith=x`, a typo) is refused with 400, so no query parameter ever reaches
the ORM as a field path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.request import Request


@dataclass(frozen=True)
class ListQuery:
    filters: dict[str, Any]
    ordering: str  # a public ordering name, possibly with a leading "-"


def parse_list_query(
    request: Request,
    *,
    filter_serializer: type[serializers.Serializer] | None,
    orderings: Sequence[str],
    default_ordering: str,
    pagination_params: Sequence[str],
) -> ListQuery:
    params = request.query_params
    known = set(pagination_params) | ({"ordering"} if orderings else set())
    filter_fields = set(filter_serializer().fields) if filter_serializer else set()
    unknown = sorted(set(params) - known - filter_fields)
    if unknown:
        raise exceptions.ValidationError(
            {name: ["Unknown query parameter."] for name in unknown[:20]}, code="unknown_parameter"
        )
    repeated = sorted(name for name in params if len(params.getlist(name)) > 1)
    if repeated:
        raise exceptions.ValidationError({name: ["Give this parameter once."] for name in repeated})
    filters: dict[str, Any] = {}
    if filter_serializer:
        given = {name: params[name] for name in filter_fields if name in params}
        serializer = filter_serializer(data=given)
        serializer.is_valid(raise_exception=True)
        filters = {k: v for k, v in serializer.validated_data.items() if v is not None}
    if not orderings:
        return ListQuery(filters=filters, ordering=default_ordering)
    ordering = params.get("ordering", default_ordering)
    allowed = {name for base in orderings for name in (base, f"-{base}")}
    if ordering not in allowed:
        raise exceptions.ValidationError({"ordering": [f"Order by one of: {', '.join(sorted(allowed))}."]})
    return ListQuery(filters=filters, ordering=ordering)
