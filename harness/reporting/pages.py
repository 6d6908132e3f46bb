"""Feedback pages: a Markdown and an HTML page per student, and a class summary.

A page is built once as a list of blocks (heading, paragraph, table, preformatted
text, figure) and written in both formats, so the two always say the same. Every
text that comes from a submission (names, messages, what its code printed or
raised) is escaped; an HTML page carries no script and a Content-Security-Policy
that forbids any. A hidden case shows its op, its verdict and the mistake named,
never a value. A failing trajectory is drawn as an inline SVG chart (:mod:`.chart`),
with a table of its values beside it.
"""

from __future__ import annotations

import html
import re
import statistics
from collections import Counter

from .chart import error_chart
from .story import build_story
from .text import points_text

_NAME = re.compile(r"\[([\w+-]+)\]")
#: Trajectory plots on a student's page.
PLOTS_PER_PAGE = 1


# ---------------------------------------------------------------- blocks -> Markdown, HTML


#: Characters Markdown (and the HTML it may carry) would read as markup: written as themselves instead.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def _md_text(text) -> str:
    """Text that a Markdown viewer shows as written: HTML escaped (a student's name or exception may hold a tag),
    and every character that could make a link, an image, emphasis or a heading backslash-escaped."""
    return _MARKDOWN.sub(r"\\\1", html.escape(str(text), quote=False))


def _md_cell(text) -> str:
    return _md_text(text).replace("\n", " ")


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for kind, *body in blocks:
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + _md_cell(body[0]))
        elif kind == "p":
            out.append(_md_text(body[0]))
        elif kind == "pre":
            out.append("```\n" + body[0].replace("```", "`` `") + "\n```")
        elif kind == "table":
            headers, rows = body
            out.append("| " + " | ".join(map(_md_cell, headers)) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
        elif kind == "bars":
            headers, rows = body
            out.append("| " + " | ".join(headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += [f"| {label} | {'█' * count} {count} |" for label, count in rows]
        elif kind == "figure":
            caption, _svg, headers, rows = body
            out.append(f"*{_md_cell(caption)}*")
            out.append("| " + " | ".join(headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}"
          "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
          "text-align:left}pre{background:#f5f5f5;padding:.6em;white-space:pre-wrap}"
          ".bar{background:#4a7;height:.9em;display:inline-block}figure{margin:1em 0}")


def to_html(title: str, blocks: list[tuple]) -> str:
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
           "img-src data:\">", f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"]
    for kind, *body in blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{esc(body[0])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{esc(body[0])}</p>")
        elif kind == "pre":
            out.append(f"<pre>{esc(body[0])}</pre>")
        elif kind == "table":
            headers, rows = body
            out.append(_html_table(headers, rows))
        elif kind == "bars":
            headers, rows = body
            cells = [[*row[:-1], f'<span class="bar" style="width:{int(row[-1]) * 8}px"></span> {int(row[-1])}']
                     for row in rows]
            out.append(_html_table(headers, cells, raw_last=True))
        elif kind == "figure":
            caption, svg, headers, rows = body
            out.append("<figure>")
            out += [svg] if svg else []  # drawn from numbers only (an older report's may be None)
            out.append(_html_table(headers, rows))
            out.append(f"<figcaption>{esc(caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def _html_table(headers, rows, raw_last: bool = False) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell if raw_last and i == len(row) - 1 else esc(str(cell))}</td>"
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------- a student's page


def _mistakes(report) -> dict[str, list]:
    """``{the mistake a diagnosis names first: [failing cases it names]}``, in the order first met."""
    found: dict[str, list] = {}
    for case in report.results:
        if case.status == "fail" and case.diagnosis and _NAME.search(case.diagnosis) \
                and not case.diagnosis.startswith("no known mistake"):
            found.setdefault(_NAME.search(case.diagnosis).group(1), []).append(case)
    return found


def _said_once(diagnosis: str) -> str:
    """A diagnosis without what else it is consistent with (said on the cases, not on the page)."""
    return re.sub(r" \(also consistent with [^)]*\)", "", diagnosis)


def _example(case) -> str:
    if case.hidden:
        return f"{case.id}: a hidden case ({case.op}); its values are not shown. {case.message}"
    text = f"{case.id}: {case.description}\n{case.message}" if case.description else f"{case.id}: {case.message}"
    return text


def _error_kind(message: str) -> str:
    if "timed out" in message or "no answer within" in message:
        return "took too long (timed out)"
    if "ended the program" in message or "exited with code" in message or "killed by" in message:
        return "ended the program (crashed or exited)"
    match = re.match(r"^(?:not run: )?([A-Za-z_][\w.]*(?:Error|Exception|Warning))\b", message)
    return match.group(1) if match else message.split(":")[0][:60]


def _plot(series: dict) -> str:
    """An inline SVG of the error of one element against the reference, per step, on a log scale: the error
    allowed beside it and the first wrong step marked, so a mistake of one part in 10^8 shows as plainly as one
    of 10."""
    return error_chart(series["error"], series["allowed"], series.get("first_wrong"))


def draw_plots(report) -> None:
    """Draw the plots a student's page will show, where the report is made (a grading worker, in parallel),
    not where the pages are written; kept in each case's ``series["svg"]``."""
    for case in _plotted(report):
        case.series["svg"] = _plot(case.series)


def _plotted(report) -> list:
    """The failing trajectories a page plots (a series kept by an older version, without errors, is not)."""
    return [c for c in report.results if c.series and "error" in c.series][:PLOTS_PER_PAGE]


def student_blocks(graded, row: dict) -> list[tuple]:
    """The blocks of one student's page: the story every format tells (:mod:`.story`), with examples and plots."""
    blocks = [("h1", f"Feedback for {row['student']}"),
              ("p", f"Score: {points_text(row['score'])} of {points_text(row['max_score'])} ({row['percent']}%). "
                    f"File: {graded.submission.path.name}.")]
    report = graded.report
    if graded.status != "ok" or report is None:
        return blocks + [("p", f"Your file could not be graded: {graded.reason}")]
    story = build_story(report)
    blocks.append(("p", "This assignment checks: " + ", ".join(story.required)))
    if graded.submission.note:
        blocks.append(("p", graded.submission.note))
    if row.get("parts"):
        blocks += [("h2", "Score per part"),
                   ("table", ("part", "points", "out of"), [(part, got, most) for part, (got, most) in
                                                             row["parts"].items()])]
    need = story.first_look()
    blocks.append(("h2", "What to look at first" if need else "Well done"))
    if not need:
        blocks.append(("p", "Everything that was checked matches the reference. Well done!"))
    for part in need:
        blocks.append(("p", part.sentence()))
        example = part.example
        if example is not None and part.verdict in ("mistake", "wrong", "error"):
            blocks.append(("pre", "For example, " + _example(example)))
    if story.load_notes:
        blocks += [("h2", "Parts of your file could not be loaded"), ("p", "; ".join(story.load_notes[:5]))]
    plotted = _plotted(report)
    if plotted:
        blocks.append(("h2", "How far your values are from the reference, step by step"))
        for case in plotted:
            series = case.series
            rows = [(i + 1, e, g, err) for i, (e, g, err) in
                    enumerate(zip(series["expected"], series["got"], series["error"]))]
            first = f", first wrong at step {series['first_wrong']}" if series.get("first_wrong") else ""
            svg = series["svg"] if "svg" in series else _plot(series)
            blocks.append(("figure", f"{case.id}: {series['where']}, where your error is largest{first}", svg,
                           ("step", "reference", "your code", "error"), rows))
    return blocks


# ---------------------------------------------------------------- the class


def class_blocks(rows: list[dict]) -> list[tuple]:
    percents = [row["percent"] for row in rows]
    blocks = [("h1", "Class summary"),
              ("p", f"{len(rows)} submissions; mean {statistics.mean(percents):.1f}%, median "
                    f"{statistics.median(percents):.1f}%.")]
    buckets = Counter(min(int(p // 10), 9) for p in percents)
    blocks += [("h2", "Scores"), ("bars", ("score", "students"),
                                  [(f"{10 * b}-{10 * b + 10}%", buckets[b]) for b in range(10)])]
    who: dict[str, list] = {}
    for row in rows:
        for name in filter(None, row.get("mistakes", "").split("; ")):
            who.setdefault(name, []).append(row["student"])
    if who:
        blocks += [("h2", "Mistakes"),
                   ("table", ("mistake", "students", "who"),
                    [(name, len(students), ", ".join(students)) for name, students in
                     sorted(who.items(), key=lambda item: (-len(item[1]), item[0]))])]
    return blocks
