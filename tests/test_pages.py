"""Feedback pages in a real browser: headless Chromium (Debian's), driven through Selenium.

The pages of a graded class must render, show each mistake once with a worked example and a plot of a
failing trajectory, escape whatever a submission wrote (no script runs), and show no value of a hidden case.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HOSTILE = (EXAMPLES / "course" / "course_2021.py").read_text() + '''

def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    raise ValueError("<script>window.pwned = 1</script><img src=x onerror=\\"window.pwned = 2\\">")
'''

if not (CHROMIUM.exists() and DRIVER.exists()):  # .ci/run installs Debian's chromium and chromium-driver
    if os.environ.get("CI"):
        raise RuntimeError("headless Chromium is missing: .ci/run installs chromium and chromium-driver")
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)


def _grade(tmp_path: Path, *extra: str) -> Path:
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / "alice.py")
    shutil.copy(EXAMPLES / "buggy_submission.py", folder / "bob.py")
    (folder / "mallory.py").write_text(HOSTILE)
    out = tmp_path / "grades"
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out),
                           "--no-sandbox", "--ops", "mini_batches,momentum,adam", *extra], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    yield driver
    driver.quit()


def _open(browser, page: Path):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    return browser.find_element(By.TAG_NAME, "body").text, browser


def test_pages_render_each_mistake_once_with_a_plot_and_escape_what_a_submission_wrote(tmp_path, browser):
    from selenium.webdriver.common.by import By

    out = _grade(tmp_path)
    text, page = _open(browser, out / "feedback" / "bob.html")
    assert page.title == "Feedback for bob"
    assert page.find_element(By.TAG_NAME, "h1").text == "Feedback for bob"
    assert text.count("[no-bias-correction]") == 1 and text.count("[last-batch-dropped]") == 1
    assert "For example, adam" in text and "expected" in text  # one worked example, with values
    assert page.find_elements(By.CSS_SELECTOR, "figure svg polyline.error")  # the trajectory plot
    assert "first wrong at step 1" in text

    text, page = _open(browser, out / "feedback" / "mallory.html")
    assert "<script>window.pwned = 1</script>" in text  # shown as text ...
    assert page.execute_script("return window.pwned === undefined")  # ... never run
    assert not page.find_elements(By.TAG_NAME, "script") and not page.find_elements(By.TAG_NAME, "img")
    assert "ValueError: 1 kind" not in text and "ValueError" in text  # errors grouped by kind

    text, page = _open(browser, out / "class.html")
    assert page.find_element(By.TAG_NAME, "h1").text == "Class summary"
    assert "3 submissions" in text and "bob" in text and "last-batch-dropped" in text
    assert len(page.find_elements(By.CSS_SELECTOR, "table")[0].find_elements(By.TAG_NAME, "tr")) == 11
    # Markdown shows the brackets escaped (\[name\]): read as a viewer renders it
    assert (out / "feedback" / "bob.md").read_text().replace("\\", "").count("[no-bias-correction]") == 1


def test_pages_of_a_hidden_set_show_no_value(tmp_path, browser):
    private = tmp_path / "private"
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "generate", "--seed", "11", "--out", str(private)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = _grade(tmp_path, "--vectors", str(private))
    text, page = _open(browser, out / "feedback" / "bob.html")
    assert "[no-bias-correction]" in text and "hidden case" in text
    assert not re.search(r"expected -?\d|got -?\d", text)  # no expected or returned value
    assert not page.find_elements("css selector", "figure")  # no plot of hidden values either
    text, _ = _open(browser, out / "feedback" / "mallory.html")
    assert "pwned" not in text  # what the submission raised is withheld too
