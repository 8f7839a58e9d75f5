"""Bar charts as server-rendered SVG: no chart library, no script.

Each chart is a `<figure>`: an SVG with `role="img"`, a title and a description, a `<title>`
tooltip on every bar, a legend, and the numbers as a table for those who cannot see the bars.
The viewBox keeps it readable from a phone's 390 px to a desktop's width.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

# The drawing's own units; the SVG scales to its container's width.
WIDTH, HEIGHT = 480, 250
LEFT, RIGHT, TOP, BOTTOM = 62, 8, 12, 34
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One kind of bar: its name (legend and tooltips), its colour's class and a value per
    label."""

    name: str
    css: str
    values: Sequence[float | None]


def bar_chart(
    key: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Format = lambda v: f"{v:g}",
    stacked: bool = False,
    integer: bool = False,
    tick_labels: Sequence[str] | None = None,
    empty: str = "Nothing to show yet.",
) -> Markup:
    """A bar chart of `series` over `labels` (stacked or side by side), or `empty` said in
    words when every value is zero or missing. `key` makes the element ids unique on a page;
    `integer`: the values are counts, so the axis's middle line is a whole number too;
    `tick_labels` are the short labels under the bars (default: `labels`)."""
    head = Markup('<figure class="chart" id="chart-{0}"><figcaption>{1}</figcaption>').format(
        key, title
    )
    if not any(v for s in series for v in s.values):
        return head + Markup('<p class="chart-empty muted">{0}</p></figure>').format(empty)
    top = nice_ceiling(_highest(series, len(labels), stacked), integer=integer)
    svg = _svg(key, title, labels, series, top, fmt, stacked, tick_labels or labels)
    return head + svg + _legend(series) + _table(labels, series, fmt) + Markup("</figure>")


def nice_ceiling(value: float, *, integer: bool = False) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (> 0). For counts
    (`integer`): an even number up to 10, then 1 to 6 or 8 times a power of ten, so that the
    axis's middle line is a whole number too."""
    if integer and value <= 10:
        return max(2, math.ceil(value / 2) * 2)
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 3, 4, 5, 6, 8, 10) if integer else (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10 * power  # pragma: no cover (the loop ends at 10)


def _highest(series: Sequence[Series], count: int, stacked: bool) -> float:
    columns = [[s.values[i] or 0 for s in series] for i in range(count)]
    return max(sum(c) if stacked else max(c) for c in columns)


def _svg(
    key: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    top: float,
    fmt: Format,
    stacked: bool,
    ticks: Sequence[str],
) -> Markup:
    parts = [
        Markup(
            '<svg class="bars" role="img" aria-labelledby="chart-{0}-title chart-{0}-desc" '
            'viewBox="0 0 {1} {2}" width="100%" preserveAspectRatio="xMidYMid meet">'
            '<title id="chart-{0}-title">{3}</title><desc id="chart-{0}-desc">{4}</desc>'
        ).format(key, WIDTH, HEIGHT, title, _summary(labels, series, fmt))
    ]
    parts += _grid(top, fmt)
    slot = PLOT_W / len(labels)
    for index, label in enumerate(labels):
        x = LEFT + index * slot
        parts += _column(x, slot, label, index, series, top, fmt, stacked)
        parts.append(
            Markup('<text class="tick" x="{0:.1f}" y="{1}" text-anchor="middle">{2}</text>').format(
                x + slot / 2, HEIGHT - BOTTOM + 20, ticks[index]
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _grid(top: float, fmt: Format) -> list[Markup]:
    lines = []
    for fraction in (0, 0.5, 1):
        y = TOP + PLOT_H * (1 - fraction)
        lines.append(
            Markup(
                '<line class="grid" x1="{0}" x2="{1}" y1="{2:.1f}" y2="{2:.1f}"/>'
                '<text class="axis" x="{3}" y="{4:.1f}" text-anchor="end">{5}</text>'
            ).format(LEFT, WIDTH - RIGHT, y, LEFT - 6, y + 4, fmt(top * fraction))
        )
    return lines


def _column(
    x: float,
    slot: float,
    label: str,
    index: int,
    series: Sequence[Series],
    top: float,
    fmt: Format,
    stacked: bool,
) -> list[Markup]:
    """One label's bars: stacked from the axis up, or side by side."""
    gap = slot * 0.18
    width = (slot - 2 * gap) / (1 if stacked else len(series))
    base: float = TOP + PLOT_H
    rects = []
    for position, one in enumerate(series):
        value = one.values[index]
        if not value:
            continue
        height = value / top * PLOT_H
        left = x + gap + (0 if stacked else position * width)
        y = base - height
        rects.append(
            Markup(
                '<rect class="bar {0}" x="{1:.2f}" y="{2:.2f}" width="{3:.2f}" height="{4:.2f}">'
                "<title>{5}: {6} {7}</title></rect>"
            ).format(one.css, left, y, width, height, label, one.name, fmt(value))
        )
        if stacked:
            base = y
    return rects


def _legend(series: Sequence[Series]) -> Markup:
    items = Markup("").join(
        Markup('<li><span class="swatch {0}" aria-hidden="true"></span>{1}</li>').format(
            s.css, s.name
        )
        for s in series
    )
    return Markup('<ul class="legend">{0}</ul>').format(items)


def _table(labels: Sequence[str], series: Sequence[Series], fmt: Format) -> Markup:
    head = Markup("").join(Markup('<th scope="col">{0}</th>').format(s.name) for s in series)
    rows = Markup("").join(
        Markup('<tr><th scope="row">{0}</th>{1}</tr>').format(
            label,
            Markup("").join(
                Markup("<td>{0}</td>").format(_shown(s.values[i], fmt)) for s in series
            ),
        )
        for i, label in enumerate(labels)
    )
    return Markup(
        '<details class="chart-data"><summary>The numbers</summary><table class="small">'
        '<thead><tr><th scope="col">Day</th>{0}</tr></thead><tbody>{1}</tbody></table></details>'
    ).format(head, rows)


def _summary(labels: Sequence[str], series: Sequence[Series], fmt: Format) -> str:
    totals = ", ".join(f"{s.name} highest {fmt(max(v or 0 for v in s.values))}" for s in series)
    return f"{labels[0]} to {labels[-1]}: {totals}."


def _shown(value: float | None, fmt: Format) -> str:
    return "—" if value is None else fmt(value)
