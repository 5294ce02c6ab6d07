"""Small SVG charts drawn on the server: the dashboard fetches nothing at run time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 24, 12, 28


@dataclass(frozen=True)
class Series:
    label: str
    colour: str  # a CSS colour from the code, never from data
    values: Sequence[float]


def line_chart(labels: Sequence[str], series: Sequence[Series], title: str) -> SafeString:
    """A line chart of ``series`` over ``labels`` (x axis), as inline SVG."""
    count = len(labels)
    top = max([1.0, *(value for line in series for value in line.values)])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + (plot_w * index / max(1, count - 1))

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    lines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title>'
        "</polyline>",
        (
            (
                line.colour,
                " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line.values)),
                line.label,
            )
            for line in series
        ),
    )
    legend = format_html_join(
        "",
        '<tspan fill="{}" dx="12">■ {}</tspan>',
        ((line.colour, line.label) for line in series),
    )
    ticks = _x_ticks(labels, x)
    return format_html(
        '<svg class="djqueue-chart" role="img" aria-label="{title}" viewBox="0 0 {w} {h}" '
        'width="100%" xmlns="http://www.w3.org/2000/svg">'
        '<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>'
        '<text x="{tx}" y="{ty}" font-size="11" text-anchor="end">{peak}</text>'
        '<text x="{tx}" y="{by}" font-size="11" text-anchor="end">0</text>'
        "{ticks}{lines}"
        '<text x="{left}" y="{h}" font-size="11" dy="-2">{legend}</text>'
        "</svg>",
        title=title,
        w=WIDTH,
        h=HEIGHT,
        left=LEFT,
        top=TOP,
        pw=plot_w,
        ph=plot_h,
        tx=LEFT - 4,
        ty=TOP + 10,
        by=TOP + plot_h,
        peak=f"{top:g}",
        ticks=ticks,
        lines=lines,
        legend=legend,
    )


def _x_ticks(labels: Sequence[str], x: Callable[[int], float]) -> SafeString:
    step = max(1, len(labels) // 6)
    return format_html_join(
        "",
        '<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>',
        ((f"{x(i):.1f}", HEIGHT - BOTTOM + 14, labels[i]) for i in range(0, len(labels), step)),
    )
