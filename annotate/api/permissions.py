"""Roles, as DRF permission classes. Views declare them (per view, optionally per method); the base view
(`views/base.py`) enforces them and answers 404 instead of 403 on an object the caller cannot see."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from annotate.api import selectors


class IsAuthenticated(BasePermission):
    """Any signed-in user (an annotator at least; what they see is scoped by the view's queryset)."""

    message = "Sign in or send an API token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_active)


class IsBatchAdmin(IsAuthenticated):
    message = "Only batch admins may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.is_batch_admin(request.user)


class IsExporter(IsAuthenticated):
    """Exporters (User.is_exporter) and batch admins."""

    message = "Only exporters may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.is_exporter(request.user) or selectors.is_batch_admin(request.user)


class AllowAny(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return True
