"""The quality dashboards in Chromium: every chart is drawn and visible, with no console error (the CSP
would report any inline script or style), and screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import Workbench
from tests.quality.conftest import T0, Builder

CHARTS = ("chart-progress", "chart-per-day", "chart-strength", "chart-leaderboard", "chart-win-rate")


def _data() -> Any:
    build = Builder()
    batch = build.batch(name="Helpfulness week 12", flag_min_evidence=3, flag_min_agreement=0.6)
    people = [build.user(name) for name in ("ann-1", "ann-2", "ann-3", "ann-4")]
    models = ["llama-70b", "llama-13b", "mistral-7b"]
    strengths = ["significantly_better", "better", "slightly_better", "negligibly_better_or_unsure"]
    for n in range(24):
        pair = [models[n % 3], models[(n + 1) % 3]]
        item = build.item(batch, models=pair, configs=[build.config_cold, build.config_hot])
        for p, person in enumerate(people[:3]):
            chosen = 0 if n % 3 else 1
            if person.username == "ann-3" and n % 2:
                chosen = 1 - chosen  # a careless annotator: flagged
            build.pairwise(
                item,
                person,
                chosen,
                strengths[(n + p) % 4],
                at=T0 + timedelta(days=n // 6),
                swapped=bool(p % 2),
            )
    return batch


def test_dashboards_render_with_every_chart_visible(wb: Workbench, artifacts_dir: Path) -> None:
    admin = factories.UserFactory(username="dash_admin", is_staff=True, is_superuser=True)
    batch = _data()
    wb.login(admin, start=f"/quality/batches/{batch.pk}/")
    expect(wb.page.locator("h1")).to_contain_text("Helpfulness week 12")
    for chart in CHARTS:
        svg = wb.page.locator(f"svg#{chart}")
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 60, chart
    assert wb.page.locator("svg#chart-per-day rect.bar").count() == 4  # four days of judgments
    assert wb.page.locator("svg#chart-leaderboard circle.estimate").count() == 3
    expect(wb.page.locator("#annotator-table tr.q-flagged")).to_contain_text("ann-3")
    expect(wb.page.locator("#leaderboard-table tbody tr")).to_have_count(3)
    # The bars are drawn in the accent colour from quality.css (the stylesheet applied under the CSP).
    fill = wb.page.eval_on_selector("svg#chart-per-day rect.bar", "el => getComputedStyle(el).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)")
    wb.page.screenshot(path=str(artifacts_dir / "quality-batch-dashboard.png"), full_page=True)

    wb.goto("/quality/tracks/helpfulness/")
    expect(wb.page.locator("svg#chart-leaderboard")).to_be_visible()
    expect(wb.page.locator("svg#chart-configs")).to_be_visible()
    wb.page.screenshot(path=str(artifacts_dir / "quality-track-dashboard.png"), full_page=True)

    wb.goto("/quality/")
    expect(wb.page.locator("#batch-list")).to_contain_text("Helpfulness week 12")
    wb.page.screenshot(path=str(artifacts_dir / "quality-index.png"), full_page=True)
