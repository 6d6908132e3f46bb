"""The trajectory chart of a feedback page: an SVG whose marks sit where the numbers say."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from optconform.harness.reporting import chart

SVG = "{http://www.w3.org/2000/svg}"


def _marks(svg: str):
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    runs: dict[str, list] = {}
    for p in root.iter(SVG + "polyline"):
        runs.setdefault(p.get("class"), []).append([tuple(map(float, xy.split(","))) for xy in p.get("points").split()])
    first = [line for line in root.iter(SVG + "line") if line.get("class") == "first-wrong"]
    labels = [t.text for t in root.iter(SVG + "text")]
    return root, runs, first, labels


def test_a_larger_error_is_drawn_higher_and_equal_decades_are_equal_distances():
    errors = [1e-12, 1e-10, 1e-8, 1e-6, 1e-4]
    _, runs, _, labels = _marks(chart.error_chart(errors, [1e-9] * 5))
    (points,) = runs["error"]
    ys = [y for _, y in points]
    assert ys == sorted(ys, reverse=True) and len(set(ys)) == 5  # SVG's y grows downwards
    gaps = [a - b for a, b in zip(ys, ys[1:])]
    assert max(gaps) - min(gaps) < 0.2  # a log scale: each factor of 100 the same height
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and chart.LEFT <= xs[0] and xs[-1] <= chart.RIGHT
    assert all(chart.TOP <= y <= chart.BOTTOM for y in ys)
    assert "1e-12" in labels and "1e-4" in labels  # the decades that hold the values are labelled


def test_the_allowed_line_and_the_first_wrong_step_are_where_the_numbers_put_them():
    errors, allowed = [1e-10, 1e-10, 1e-3, 1e-3], [1e-8] * 4
    _, runs, first, labels = _marks(chart.error_chart(errors, allowed, first_wrong=3))
    error_points, allowed_points = runs["error"][0], runs["allowed"][0]
    assert error_points[0][1] > allowed_points[0][1] > error_points[2][1]  # below the bound, then above it
    assert len(first) == 1 and float(first[0].get("x1")) == error_points[2][0]  # the dashed line at step 3
    assert "first wrong step" in labels


def test_no_first_wrong_step_draws_no_marker_and_says_none():
    _, _, first, labels = _marks(chart.error_chart([1e-3, 1e-2], [1e-8, 1e-8]))
    assert not first and "first wrong step" not in labels


def test_a_zero_or_non_finite_error_is_a_gap_not_a_point():
    errors = [1e-3, 0.0, 1e-2, math.nan, math.inf, 1e-1]
    _, runs, _, _ = _marks(chart.error_chart(errors, [1e-8] * 6))
    assert [len(run) for run in runs["error"]] == [1, 1, 1]


def test_a_single_step_and_an_error_that_is_never_drawable_still_make_a_chart():
    _, runs, _, _ = _marks(chart.error_chart([2e-5], [1e-8], first_wrong=1))
    assert len(runs["error"][0]) == 1
    root, runs, _, _ = _marks(chart.error_chart([math.nan, 0.0], [0.0, 0.0]))
    assert "error" not in runs and root.tag == SVG + "svg"


def test_the_extremes_of_float64_are_drawn_inside_the_frame():
    _, runs, _, labels = _marks(chart.error_chart([5e-324, 1e-200, 1.7e308], [2.2e-308] * 3, first_wrong=2))
    (points,) = runs["error"]
    assert all(chart.TOP <= y <= chart.BOTTOM for _, y in points) and points[0][1] > points[2][1]
    assert labels  # the decades are labelled (10**309 is never computed)
