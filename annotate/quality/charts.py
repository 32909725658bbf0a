"""Charts as SVG rendered on the server: no script, no CDN, nothing for the CSP to refuse.

Each function returns one `<svg>` element. Every label passes through format_html (escaped); colours come
from CSS classes (static/css/quality.css) except the heat map's cells, whose fill is a computed attribute
(an SVG presentation attribute, not an inline style).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe


def _arg(value: Any) -> Any:
    # Numbers keep their format specs ({:.1f}); everything else is escaped unless already safe.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return conditional_escape(value)
    return value


def format_html(template: str, *args: Any) -> SafeString:
    """django's format_html, but numbers pass through unescaped so that format specs apply to them."""
    return mark_safe(template.format(*(_arg(a) for a in args)))


def format_html_join(sep: str, template: str, rows: Any) -> SafeString:
    return mark_safe(conditional_escape(sep).join(format_html(template, *row) for row in rows))


WIDTH = 720
LEFT = 56
RIGHT = 16
TOP = 28
BOTTOM = 44


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2g}"


def _frame(title: str, height: int, body: SafeString, chart_id: str) -> SafeString:
    return format_html(
        '<svg class="chart" id="{}" role="img" aria-labelledby="{}-title" viewBox="0 0 {} {}" '
        'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{}-title">{}</title>'
        '<text class="chart-title" x="{}" y="18">{}</text>{}</svg>',
        chart_id,
        chart_id,
        WIDTH,
        height,
        chart_id,
        title,
        LEFT,
        title,
        body,
    )


def _y_axis(top_value: float, plot_height: int, ticks: int = 4) -> SafeString:
    rows = []
    for i in range(ticks + 1):
        value = top_value * i / ticks
        y = TOP + plot_height - plot_height * i / ticks
        rows.append((LEFT, y, WIDTH - RIGHT, y, LEFT - 6, y + 4, _fmt(value)))
    return format_html_join(
        "",
        '<line class="grid" x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}"/>'
        '<text class="tick" x="{}" y="{:.1f}" text-anchor="end">{}</text>',
        rows,
    )


def _empty(title: str, chart_id: str) -> SafeString:
    body = format_html('<text class="empty" x="{}" y="60">No data yet.</text>', LEFT)
    return _frame(title, 90, body, chart_id)


def bar_chart(
    data: Sequence[tuple[str, float]], *, title: str, chart_id: str, height: int = 240
) -> SafeString:
    """Vertical bars, one per (label, value); labels thin out when there are many."""
    if not data or not any(v for _, v in data):
        return _empty(title, chart_id)
    plot_h = height - TOP - BOTTOM
    plot_w = WIDTH - LEFT - RIGHT
    top = _nice_max(max(v for _, v in data))
    slot = plot_w / len(data)
    every = max(1, math.ceil(len(data) / 12))
    bars = []
    labels = []
    for i, (label, value) in enumerate(data):
        bar_h = plot_h * value / top
        x = LEFT + i * slot + slot * 0.1
        bars.append((x, TOP + plot_h - bar_h, max(slot * 0.8, 1), bar_h, label, _fmt(value)))
        if i % every == 0:
            labels.append((LEFT + (i + 0.5) * slot, TOP + plot_h + 16, label))
    body = format_html(
        "{}{}{}",
        _y_axis(top, plot_h),
        format_html_join(
            "",
            '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}">'
            "<title>{}: {}</title></rect>",
            bars,
        ),
        format_html_join("", '<text class="tick" x="{:.1f}" y="{}" text-anchor="middle">{}</text>', labels),
    )
    return _frame(title, height, body, chart_id)


def line_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    chart_id: str,
    target: float | None = None,
    target_label: str = "",
    height: int = 240,
) -> SafeString:
    """A line over labelled points (e.g. days), with an optional horizontal target line."""
    if not points:
        return _empty(title, chart_id)
    plot_h = height - TOP - BOTTOM
    plot_w = WIDTH - LEFT - RIGHT
    top = _nice_max(max([v for _, v in points] + ([target] if target else [])))
    step = plot_w / max(len(points) - 1, 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        return LEFT + i * step, TOP + plot_h - plot_h * value / top

    coords = " ".join("{:.1f},{:.1f}".format(*xy(i, v)) for i, (_, v) in enumerate(points))
    every = max(1, math.ceil(len(points) / 10))
    labels = [
        (xy(i, 0)[0], TOP + plot_h + 16, label) for i, (label, _) in enumerate(points) if i % every == 0
    ]
    dots = [(*xy(i, v), label, _fmt(v)) for i, (label, v) in enumerate(points)]
    target_svg: SafeString = mark_safe("")
    if target:
        y = xy(0, target)[1]
        target_svg = format_html(
            '<line class="target" x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}"/>'
            '<text class="target-label" x="{}" y="{:.1f}" text-anchor="end">{} {}</text>',
            LEFT,
            y,
            WIDTH - RIGHT,
            y,
            WIDTH - RIGHT,
            y - 4,
            target_label,
            _fmt(target),
        )
    body = format_html(
        '{}{}<polyline class="line" points="{}"/>{}{}',
        _y_axis(top, plot_h),
        target_svg,
        coords,
        format_html_join(
            "", '<circle class="dot" cx="{:.1f}" cy="{:.1f}" r="3"><title>{}: {}</title></circle>', dots
        ),
        format_html_join("", '<text class="tick" x="{:.1f}" y="{}" text-anchor="middle">{}</text>', labels),
    )
    return _frame(title, height, body, chart_id)


def interval_chart(rows: Sequence[dict[str, Any]], *, title: str, chart_id: str) -> SafeString:
    """A forest plot: each row's estimate (`rating`) as a dot with its interval as a bar, best on top."""
    rows = [r for r in rows if r.get("rating") is not None]
    if not rows:
        return _empty(title, chart_id)
    row_h = 26
    label_w = 200
    height = TOP + row_h * len(rows) + BOTTOM
    values = [
        v for r in rows for v in (r["rating"], r.get("rating_lower"), r.get("rating_upper")) if v is not None
    ]
    low, high = min(values), max(values)
    pad = max((high - low) * 0.08, 10)
    low, high = low - pad, high + pad
    plot_w = WIDTH - label_w - RIGHT

    def x(value: float) -> float:
        return label_w + plot_w * (value - low) / (high - low)

    items = []
    for i, row in enumerate(rows):
        y = TOP + row_h * i + row_h / 2
        lo = row.get("rating_lower")
        hi = row.get("rating_upper")
        interval = (
            format_html(
                '<line class="interval" x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}"/>', x(lo), y, x(hi), y
            )
            if lo is not None and hi is not None
            else mark_safe("")
        )
        items.append(
            format_html(
                '<text class="row-label" x="{}" y="{:.1f}" text-anchor="end">{}</text>{}'
                '<circle class="estimate" cx="{:.1f}" cy="{:.1f}" r="4">'
                "<title>{}: {} ({} to {})</title></circle>",
                label_w - 8,
                y + 4,
                row["name"],
                interval,
                x(row["rating"]),
                y,
                row["name"],
                _fmt(row["rating"]),
                _fmt(lo) if lo is not None else "?",
                _fmt(hi) if hi is not None else "?",
            )
        )
    axis_y = TOP + row_h * len(rows) + 14
    ticks = [(x(v), axis_y, _fmt(v)) for v in (low + (high - low) * k / 4 for k in range(5))]
    body = format_html(
        '{}<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>{}',
        format_html_join("", "{}", ((item,) for item in items)),
        label_w,
        axis_y - 12,
        WIDTH - RIGHT,
        axis_y - 12,
        format_html_join("", '<text class="tick" x="{:.1f}" y="{}" text-anchor="middle">{}</text>', ticks),
    )
    return _frame(title, height, body, chart_id)


def _heat(value: float) -> str:
    """0 -> red, 0.5 -> light grey, 1 -> blue."""
    value = min(max(value, 0.0), 1.0)
    if value < 0.5:
        t = value / 0.5
        r, g, b = 200 + 30 * t, 60 + 160 * t, 60 + 160 * t
    else:
        t = (value - 0.5) / 0.5
        r, g, b = 230 - 190 * t, 220 - 110 * t, 220 - 10 * t
    return f"#{int(r):02x}{int(g):02x}{int(b):02x}"


def heatmap(
    names: Sequence[str], matrix: Sequence[Sequence[float | None]], *, title: str, chart_id: str
) -> SafeString:
    """The win-rate matrix: row i beats column j in this share of their comparisons."""
    n = len(names)
    if n == 0:
        return _empty(title, chart_id)
    label_w = 200
    cell = max(16, min(48, (WIDTH - label_w - RIGHT) // n))
    height = TOP + cell * n + 10
    cells = []
    for i in range(n):
        for j in range(n):
            value = matrix[i][j]
            fill = "#e6e8eb" if value is None else _heat(value)
            text = "" if value is None else f"{value:.2f}"
            cells.append(
                (
                    label_w + j * cell,
                    TOP + i * cell,
                    cell - 1,
                    cell - 1,
                    fill,
                    names[i],
                    names[j],
                    text or "-",
                )
            )
    body = format_html(
        "{}{}",
        format_html_join(
            "",
            '<text class="row-label" x="{}" y="{}" text-anchor="end">{}</text>',
            ((label_w - 8, TOP + i * cell + cell * 0.65, name) for i, name in enumerate(names)),
        ),
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} vs {}: {}</title></rect>',
            cells,
        ),
    )
    return _frame(title, height, body, chart_id)
