"""The quality dashboards over HTTP: batch admins only (404 for anyone else), charts as inline SVG with
no script, untrusted names escaped."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.quality.conftest import Builder

pytestmark = pytest.mark.django_db
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _batch(build: Builder) -> Any:
    batch = build.batch(name=f"Batch {EVIL}")
    alice, bob = build.user("dora"), build.user("eve")
    for n in range(4):
        item = build.item(batch, models=[EVIL, "model-b"])
        build.pairwise(item, alice, n % 2)
        build.pairwise(item, bob, 0)
    return batch


def test_a_batch_admin_sees_every_section_with_svg_charts(build: Builder, staff_client: Client) -> None:
    batch = _batch(build)
    response = staff_client.get(reverse("quality:batch", args=[batch.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for chart in ("chart-progress", "chart-per-day", "chart-strength", "chart-leaderboard", "chart-win-rate"):
        assert f'<svg class="chart" id="{chart}"' in html
    assert 'id="annotator-table"' in html and "dora" in html
    assert "Krippendorff" in html and "Fleiss" in html
    # Untrusted names (a batch name, a model name) are escaped, in the page and inside the SVG.
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "<script>" not in html.split("</head>", 1)[1]
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_track_and_index_pages(build: Builder, staff_client: Client) -> None:
    batch = _batch(build)
    index = staff_client.get(reverse("quality:index")).content.decode()
    assert reverse("quality:batch", args=[batch.pk]) in index
    track = staff_client.get(reverse("quality:track", args=["helpfulness"]))
    assert track.status_code == 200 and 'id="chart-leaderboard"' in track.content.decode()
    assert staff_client.get(reverse("quality:track", args=["nonsense"])).status_code == 404


def test_annotators_get_404_and_anonymous_visitors_sign_in(
    build: Builder, annotator_client: Client, client: Client
) -> None:
    batch = _batch(build)
    url = reverse("quality:batch", args=[batch.pk])
    assert annotator_client.get(url).status_code == 404
    assert annotator_client.get(reverse("quality:index")).status_code == 404
    assert annotator_client.post(reverse("quality:recompute", args=[batch.pk])).status_code == 404
    assert client.get(url).status_code == 302


def test_recompute_button_queues_and_redirects(
    build: Builder,
    staff_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from annotate.quality import tasks

    batch = _batch(build)
    sent: list[Any] = []
    monkeypatch.setattr(tasks.recompute_batch_quality, "delay", lambda pk: sent.append(pk))
    monkeypatch.setattr(tasks.recompute_track_quality, "delay", lambda track: sent.append(track))
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("quality:recompute", args=[batch.pk]))
    assert response.status_code == 302 and sent == [batch.pk, "helpfulness"]


def test_the_batch_admin_links_to_the_dashboard_and_recomputes(build: Builder, staff_client: Client) -> None:
    batch = _batch(build)
    listing = staff_client.get(reverse("admin:batches_batch_changelist")).content.decode()
    assert reverse("quality:batch", args=[batch.pk]) in listing
    change = staff_client.get(reverse("admin:batches_batch_change", args=[batch.pk])).content.decode()
    assert "adaptive_overlap" in change and "flag_min_agreement" in change
