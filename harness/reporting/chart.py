"""The one chart a feedback page draws: a trajectory's error per step on a log scale, as inline SVG.

It is written directly, from numbers only (no text of a submission ever reaches it), in
about a millisecond: a plotting library costs a third of a second to import in every
grading worker and a fifth of a second a chart, more than the rest of a buggy
submission's grading. The chart is fixed in kind, so it needs none of a library's
layout: the error as a red line with square markers, the error allowed as a dotted
grey line, the first wrong step as a dashed vertical line, decade ticks on the y axis.
"""

from __future__ import annotations

import math

WIDTH, HEIGHT = 600, 310
#: the plotting area inside the chart: left, top, right, bottom; the steps sit ``PAD`` inside its sides
LEFT, TOP, RIGHT, BOTTOM = 70, 12, 585, 236
PAD = 12
ERROR, ALLOWED, FIRST_WRONG = "crimson", "grey", "black"


def _decades(values: list[float]) -> tuple[int, int]:
    """The powers of ten below the smallest and above the largest positive finite value (at least one apart)."""
    drawn = [v for v in values if v > 0 and math.isfinite(v)] or [1.0]
    low, high = math.floor(math.log10(min(drawn))), math.ceil(math.log10(max(drawn)))
    return low, max(high, low + 1)


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive points with a y; a missing y (zero or not finite: no place on a log scale) is a gap."""
    runs, run = [], []
    for x, y in points:
        if y is None:
            runs, run = runs + [run] if run else runs, []
        else:
            run.append((x, y))
    return runs + [run] if run else runs


def _path(run: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in run)


def error_chart(errors: list[float], allowed: list[float], first_wrong: int | None = None) -> str:
    """The SVG of ``errors[i]`` (step ``i + 1``) against ``allowed[i]``, log-scaled, ``first_wrong`` marked."""
    steps = max(len(errors), 1)
    low, high = _decades(list(errors) + list(allowed))

    def x(step: int) -> float:
        return LEFT + PAD + (RIGHT - LEFT - 2 * PAD) * ((step - 1) / (steps - 1) if steps > 1 else 0.5)

    def height(power: float) -> float:  # where 10**power sits (a power, not the value: 1e-324 and 1e309 too)
        return BOTTOM - (BOTTOM - TOP) * (power - low) / (high - low)

    def y(value: float) -> float | None:
        return height(math.log10(value)) if value > 0 and math.isfinite(value) else None

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="sans-serif" font-size="11">',
           f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="none" stroke="#444"/>']
    every = max(1, math.ceil((high - low) / 8))  # at most about eight labelled decades
    for power in range(low, high + 1, every):
        at = height(power)
        out.append(f'<line x1="{LEFT - 4}" y1="{at:.1f}" x2="{RIGHT}" y2="{at:.1f}" stroke="#ddd"/>'
                   f'<text x="{LEFT - 6}" y="{at + 4:.1f}" text-anchor="end">1e{power}</text>')
    stride = max(1, math.ceil(steps / 12))  # at most about twelve labelled steps
    for step in range(1, steps + 1, stride):
        out.append(f'<text x="{x(step):.1f}" y="{BOTTOM + 15}" text-anchor="middle">{step}</text>')
    out.append(f'<text x="{(LEFT + RIGHT) / 2:.0f}" y="{BOTTOM + 31}" text-anchor="middle">step</text>'
               f'<text x="16" y="{(TOP + BOTTOM) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(TOP + BOTTOM) / 2:.0f})">error</text>')
    for run in _segments([(x(i + 1), y(v)) for i, v in enumerate(allowed)]):
        out.append(f'<polyline class="allowed" points="{_path(run)}" fill="none" stroke="{ALLOWED}" '
                   'stroke-dasharray="2,3"/>')
    for run in _segments([(x(i + 1), y(v)) for i, v in enumerate(errors)]):
        out.append(f'<polyline class="error" points="{_path(run)}" fill="none" stroke="{ERROR}"/>')
        out += [f'<rect x="{px - 2.5:.1f}" y="{py - 2.5:.1f}" width="5" height="5" fill="{ERROR}"/>'
                for px, py in run]
    if first_wrong:
        at = x(first_wrong)
        out.append(f'<line class="first-wrong" x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{BOTTOM}" '
                   f'stroke="{FIRST_WRONG}" stroke-dasharray="6,4"/>')
    legend = [(ERROR, "", "|your value - reference|"), (ALLOWED, "2,3", "error allowed")]
    legend += [(FIRST_WRONG, "6,4", "first wrong step")] if first_wrong else []
    for column, (colour, dashes, label) in enumerate(legend):  # a row under the chart: it never hides a point
        left = LEFT + 175 * column
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        out.append(f'<line x1="{left}" y1="{HEIGHT - 12}" x2="{left + 25}" y2="{HEIGHT - 12}" stroke="{colour}"'
                   f'{dash}/><text x="{left + 31}" y="{HEIGHT - 8}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)
