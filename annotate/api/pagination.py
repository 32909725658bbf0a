"""Pagination: page numbers for the small collections, cursors (by id) for the ones that grow without bound.

A bad page number or cursor is the client's mistake: 400 naming the parameter, never a 404 or a 500.
"""

from __future__ import annotations

import binascii
from typing import Any

from django.core.paginator import InvalidPage
from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination
from rest_framework.request import Request

MAX_PAGE_SIZE = 200
MAX_ID = 2**63 - 1


def check_page_size(request: Request) -> None:
    raw = request.query_params.get("page_size")
    if raw is not None and (not raw.isdigit() or not 1 <= int(raw[:4]) <= MAX_PAGE_SIZE or len(raw) > 3):
        raise exceptions.ValidationError(
            {"page_size": [f"A page size is a whole number from 1 to {MAX_PAGE_SIZE}."]}
        )


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    query_params = ("page", "page_size")

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Any] | None:
        check_page_size(request)
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and (not raw.isdigit() or len(raw) > 9 or int(raw) < 1):
            raise exceptions.ValidationError({"page": ["A page number is a positive whole number."]})
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"page": ["That page is past the last page."]}) from None
        except InvalidPage:  # pragma: no cover - DRF turns it into NotFound
            raise exceptions.ValidationError({"page": ["Invalid page."]}) from None


class IdCursorPagination(CursorPagination):
    """Cursor pagination over id (ascending by default; the view may pass "-id")."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "id"
    query_params = ("cursor", "page_size")

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        ordering = getattr(view, "cursor_ordering", None) or self.ordering
        if ordering.lstrip("-") != "id":  # pragma: no cover - a programming error, not input
            raise ValueError("IdCursorPagination orders by id only.")
        return (ordering,)

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Any] | None:
        check_page_size(request)
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            if encoded is not None:
                binascii.a2b_base64(encoded.encode("ascii"), strict_mode=True)
            cursor = super().decode_cursor(request)
        except (exceptions.NotFound, ValueError):
            cursor = None
            bad = True
        else:
            bad = False
        if cursor is not None and cursor.position is not None:
            position = str(cursor.position)
            bad = not position.isdigit() or int(position) > MAX_ID
        if bad:
            raise exceptions.ValidationError({"cursor": ["Invalid cursor: use the next or previous link."]})
        return cursor
