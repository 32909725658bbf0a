"""The base of every API view: declared permissions, scoped querysets, idempotent writes, strict lists.

- Each view declares `permission_classes` (and may declare `method_permissions` for some methods); a view
  that declares none is refused when the class is defined.
- `get_queryset()` is what the caller may see; object routes look their object up in it, so another
  annotator's assignment is a 404. A permission denied on an object route is a 404 too, unless the caller
  can see the object (then 403: seen, but not theirs to change).
- Every write method (POST, PUT, PATCH, DELETE) runs under the request's Idempotency-Key, if it has one.
- List views parse their query string strictly (declared filters and orderings only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.filters import ListQuery, parse_list_query
from annotate.api.idempotency import HEADER, run_idempotent
from annotate.api.pagination import IdCursorPagination, PagePagination
from annotate.api.serializers import Error, InputSerializer

WRITE_METHODS = ("post", "put", "patch", "delete")


def _idempotent(handler: Callable[..., Response]) -> Callable[..., HttpResponse]:
    @wraps(handler)
    def wrapped(self: ApiView, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return run_idempotent(
            request,
            lambda: handler(self, request, *args, **kwargs),
            digest=self.body_digest_function(),
            withhold=self.withheld_on_replay,
        )

    return wrapped


class NoInput(InputSerializer):
    """The body of an action that takes none: empty, or `{}`."""


class ApiView(APIView):
    abstract: ClassVar[bool] = True  # only concrete views (not this or other bases) must declare permissions
    method_permissions: ClassVar[dict[str, Sequence[type]]] = {}
    # Object routes name the URL keyword that identifies their object; None for collection routes.
    lookup_url_kwarg: ClassVar[str | None] = None
    # Response fields that are secrets: never stored by the Idempotency-Key record (see idempotency.py).
    withheld_on_replay: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract", False):
            own = [k for k in cls.__mro__ if issubclass(k, ApiView) and not k.__dict__.get("abstract", False)]
            if not any("permission_classes" in k.__dict__ for k in own):
                raise ImproperlyConfigured(f"{cls.__name__} must declare its permission_classes.")
        for name in WRITE_METHODS:
            if name in cls.__dict__:
                setattr(cls, name, _idempotent(cls.__dict__[name]))

    # --- permissions and scoping ---------------------------------------------------------------

    def get_permissions(self) -> list[Any]:
        classes = self.method_permissions.get(self.request.method or "", self.permission_classes)
        return [permission() for permission in classes]

    def get_queryset(self) -> QuerySet:
        raise NotImplementedError(f"{type(self).__name__} must define get_queryset()")

    def get_object(self) -> Model:
        assert self.lookup_url_kwarg is not None
        obj = self.get_queryset().filter(pk=self.kwargs[self.lookup_url_kwarg]).first()
        if obj is None:
            raise exceptions.NotFound()
        return obj

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> None:
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated()
        if self.lookup_url_kwarg is not None:
            visible = self.get_queryset().filter(pk=self.kwargs[self.lookup_url_kwarg]).exists()
            if not visible:
                raise exceptions.NotFound()
        raise exceptions.PermissionDenied(detail=message, code=code)

    # --- input ---------------------------------------------------------------------------------

    def body_digest_function(self) -> Callable[[], str] | None:
        """For the Idempotency-Key: None reads `request.body`; views that stream their body override it."""
        return None

    def parse(
        self, serializer_class: type[serializers.Serializer], *, partial: bool = False
    ) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def no_body(self) -> None:
        self.parse(NoInput)


class ListApiView(ApiView):
    """A collection: strict query string, scoped queryset, paginated output."""

    abstract = True

    pagination_class: ClassVar[type[BasePagination]] = PagePagination
    filter_serializer: ClassVar[type[serializers.Serializer] | None] = None
    orderings: ClassVar[dict[str, str]] = {}  # public name -> model field
    default_ordering: ClassVar[str] = "id"
    output_serializer: ClassVar[type[serializers.Serializer]]

    def list_query(self) -> ListQuery:
        return parse_list_query(
            self.request,
            filter_serializer=self.filter_serializer,
            orderings=tuple(self.orderings),
            default_ordering=self.default_ordering,
            pagination_params=getattr(self.pagination_class, "query_params", ()),
        )

    def filter_queryset(self, queryset: QuerySet, filters: dict[str, Any]) -> QuerySet:
        return queryset

    def list_response(self) -> Response:
        query = self.list_query()
        queryset = self.filter_queryset(self.get_queryset(), query.filters)
        if self.pagination_class is IdCursorPagination:
            self.cursor_ordering = query.ordering
        else:
            field = self.orderings.get(query.ordering.lstrip("-"), "id")
            desc = query.ordering.startswith("-")
            queryset = queryset.order_by(f"-{field}" if desc else field, "-pk" if desc else "pk")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        data = self.output_serializer(page, many=True, context={"request": self.request}).data
        return paginator.get_paginated_response(data)


# --- OpenAPI helpers -------------------------------------------------------------------------------

ERROR_DESCRIPTIONS = {
    400: "Invalid input: `fields` names each field at fault.",
    401: "Not authenticated: no, a bad, an expired or a revoked token.",
    403: "Authenticated, but not allowed (role, or a missing CSRF token on a session write).",
    404: "No such object, or not one you may see.",
    409: "The state does not allow it now (e.g. batch not open, already submitted).",
    413: "The request body is too large.",
    415: "Send JSON (Content-Type: application/json).",
    422: "The Idempotency-Key was used before for a different request.",
    429: "Too many requests: wait for Retry-After seconds.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation (401, 403 and 429 are added to every one)."""
    every = {401, 403, 429}
    return {
        code: OpenApiResponse(Error, description=ERROR_DESCRIPTIONS[code])
        for code in sorted(every | set(codes))
    }


def write_errors(*codes: int) -> dict[int, OpenApiResponse]:
    return errors(400, 413, 415, 422, *codes)


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    pattern=r"^[!-~]{1,255}$",
    description="Optional. The same key with the same body replays the first response (Idempotent-Replayed: "
    "true); with a different body it is refused with 422.",
)


def page_parameters(view: type[ListApiView]) -> list[OpenApiParameter]:
    params: list[OpenApiParameter] = []
    if view.pagination_class is IdCursorPagination:
        params.append(OpenApiParameter("cursor", OpenApiTypes.STR, description="From a next/previous link."))
    else:
        params.append(OpenApiParameter("page", OpenApiTypes.INT, description="A page number (from 1)."))
    params.append(OpenApiParameter("page_size", OpenApiTypes.INT, description="Results per page (1 to 200)."))
    if view.orderings:
        choices = sorted({n for base in view.orderings for n in (base, f"-{base}")})
        params.append(OpenApiParameter("ordering", OpenApiTypes.STR, enum=choices, description="Sort order."))
    if view.filter_serializer is not None:
        params.append(view.filter_serializer)  # type: ignore[arg-type]
    return params


def paginated(name: str, item: type[serializers.Serializer], *, cursor: bool = False) -> Any:
    fields: dict[str, serializers.Field] = {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    }
    if not cursor:
        fields = {"count": serializers.IntegerField(), **fields}
    return inline_serializer(name=name, fields=fields)
