"""One story in every format: the feedback text, the Markdown and HTML pages, Gradescope and PrairieLearn.

A class of the course-style examples and the bundled buggy ones (a named mistake, a syntax error that costs a
function, a mistake no catalogue names, a function left out) is graded and checked; for each student, every
format must carry the same facts: which functions need work, the mistake named (or that none is), the syntax
error's line. And the story never names a mistake that only some failing checks fit.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optconform.harness.checking.results import CaseResult, RunReport
from optconform.harness.reporting.story import build_story

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
COURSE = (EXAMPLES / "course" / "course_2021.py").read_text(encoding="utf-8")
SYNTAX = COURSE.replace("def update_parameters_with_adam(parameters, grads, v, s, t,",
                        "def update_parameters_with_adam(parameters, grads, v, s, t,,", 1)
UNCATALOGUED = COURSE.replace("(1 - beta1 ** t)", "(1 - beta1 ** (t + 2))").replace(
    "(1 - beta1**t)", "(1 - beta1**(t + 2))")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optconform.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """Each student's story as every format tells it: {student: {format: text}}."""
    base = tmp_path_factory.mktemp("story")
    folder = base / "class"
    folder.mkdir()
    shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / "alice.py")
    shutil.copy(EXAMPLES / "buggy_submission.py", folder / "bob.py")
    shutil.copy(EXAMPLES / "seed_notebook.ipynb", folder / "carol.ipynb")
    (folder / "dave.py").write_text(SYNTAX, encoding="utf-8")
    (folder / "erin.py").write_text(UNCATALOGUED, encoding="utf-8")
    assert SYNTAX != COURSE and UNCATALOGUED != COURSE
    out = base / "grades"
    done = _cli("grade", str(folder), "--out", str(out), "--no-sandbox", "--course", "2021")
    assert done.returncode == 0, done.stderr
    told = {}
    for path in sorted(folder.iterdir()):
        student = path.stem
        feedback = out / "feedback"
        told[student] = {
            "text": (feedback / f"{student}.txt").read_text(encoding="utf-8").split("=" * 72)[0],
            "markdown": (feedback / f"{student}.md").read_text(encoding="utf-8").replace("\\", ""),
            "html": html.unescape(re.sub(r"<[^>]+>", " ", (feedback / f"{student}.html").read_text(encoding="utf-8"))),
        }
        for fmt in ("gradescope", "prairielearn"):
            checked = _cli("check", str(path), "--format", fmt, "--no-sandbox", "--course", "2021")
            results = json.loads(checked.stdout)
            told[student][fmt] = json.dumps(results)
    report = json.loads((out / "feedback" / "bob.json").read_text(encoding="utf-8"))
    return told, report


def _everywhere(told: dict, student: str, fact: str) -> None:
    missing = [fmt for fmt, text in told[student].items() if fact not in text]
    assert not missing, f"{student}: {fact!r} is missing from {missing}"


def test_every_format_names_the_same_functions_mistakes_and_syntax_errors(formats):
    told, _ = formats
    for fact in ("update_parameters_with_adam", "[no-bias-correction]"):
        _everywhere(told, "bob", fact)
    _everywhere(told, "carol", "[epsilon-inside-sqrt]")  # the seed notebook's own convention
    for fact in ("could not load update_parameters_with_adam", "line "):
        _everywhere(told, "dave", fact)
    assert not any("could not find update_parameters_with_adam" in text for text in told["dave"].values())
    _everywhere(told, "erin", "No known mistake explains all")
    assert not any("[no-bias-correction]" in text or "[only-first-correction]" in text
                   for text in told["erin"].values())  # a coincidence on some checks is never a name
    for fmt, text in told["alice"].items():
        assert "No known mistake" not in text and "could not" not in text, fmt


def _case(op: str, status: str, message: str = "", diagnosis: str | None = None, hidden: bool = False):
    return CaseResult(f"{op}/x/{len(message)}{status}", op, status, message, diagnosis=diagnosis, hidden=hidden)


def test_a_name_that_fits_some_failing_checks_only_is_never_said():
    exp = "matches exponential decay [exponential-decay]: the rate is lr0 * decay**t. Fix: divide."
    boundary = "matches decayed only on the boundary epochs [decay-only-on-boundary]: ... Fix: ..."
    report = RunReport(target="t", dtype="float64", conventions={})
    report.results = [_case("lr_decay.inverse_time", "fail", "learning_rate: expected 0.25, got 0.5 (x)", exp),
                      _case("lr_decay.inverse_time", "fail", "learning_rate: expected 0.1, got 0.5 (x)"),
                      _case("lr_decay.scheduled", "fail", "learning_rate: expected 0.3, got 0.5 (x)", boundary),
                      _case("lr_decay.scheduled", "fail", "learning_rate: expected 0.2, got 0.4 (x)", exp),
                      _case("lr_decay.scheduled", "pass")]
    story = build_story(report)
    update_lr, scheduled = story.parts
    assert update_lr.constant and "returns the same value 0.5 whatever the inputs" in update_lr.sentence()
    assert update_lr.mistake is None and "exponential" not in update_lr.sentence()
    assert scheduled.constant is None and scheduled.mistake is None
    assert "No known mistake explains all 2 of them" in scheduled.sentence()
    assert "gives wrong results in 2 of 3 checks" in scheduled.sentence()  # the function's own counts


def test_a_name_every_failing_check_fits_is_said_once_with_the_common_mistake():
    only = "matches no bias correction [no-bias-correction]: v and s used directly. Fix: divide."
    also = ("matches only the first bias correction [only-first-correction] (also consistent with no bias "
            "correction [no-bias-correction]): ... Fix: ...")
    report = RunReport(target="t", dtype="float64", conventions={})
    report.results = [_case("adam.update", "fail", "a", only), _case("adam.update", "fail", "b", also),
                      _case("adam.trajectory", "fail", "c", only), _case("adam.init", "pass")]
    story = build_story(report)
    adam = next(p for p in story.parts if p.function == "update_parameters_with_adam")
    assert adam.verdict == "mistake" and adam.mistake.startswith("no bias correction [no-bias-correction]")
    assert [p.function for p in story.first_look()] == ["update_parameters_with_adam"]
