"""Every list route accepts only its declared filters and orderings: guesses at other fields (the
password hash above all) are refused the same way whatever they guess, so nothing leaks."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from annotate.api.views.base import ListApiView
from tests import factories
from tests.security.routes import all_routes

pytestmark = pytest.mark.django_db

LIST_PATHS = sorted(
    route.path
    for route in all_routes()
    if isinstance(route.view, type) and issubclass(route.view, ListApiView) and hasattr(route.view, "get")
)
PROBES = [
    "ordering=annotator__password",
    "ordering=-annotator__password",
    "ordering=user__password",
    "ordering=requested_by__password",
    "ordering=password",
    "ordering=created_by__password",
    "annotator__password__startswith=md5",
    "user__password__startswith=md5",
    "requested_by__password__startswith=md5",
    "password__startswith=md5",
    "created_by__password__regex=.*",
    "search=md5",
    "format=json",
    "fields=password",
]


def test_every_list_route_is_probed() -> None:
    assert "/api/v1/judgments/" in LIST_PATHS and "/api/v1/tokens/" in LIST_PATHS
    assert len(LIST_PATHS) >= 9, LIST_PATHS


@pytest.fixture
def admin_api(batch_admin: Any) -> APIClient:
    batch = factories.ready_batch(items=2)
    batch.created_by = batch_admin
    batch.save()
    client = APIClient()
    client.force_login(batch_admin)
    return client


@pytest.mark.parametrize("path", LIST_PATHS)
def test_unlisted_filters_and_orderings_are_refused_on_every_list(admin_api: APIClient, path: str) -> None:
    assert admin_api.get(path).status_code == 200
    for probe in PROBES:
        response = admin_api.get(f"{path}?{probe}")
        assert response.status_code == 400, (path, probe, response.content[:200])
        name = probe.split("=")[0]
        assert name in response.json()["error"]["fields"], (path, probe)
        # The refusal never depends on the guessed value.
        other = admin_api.get(f"{path}?{name}=zz-{probe[-3:]}")
        if name != "ordering":
            assert other.content == response.content, (path, probe)
