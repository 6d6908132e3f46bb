"""Loading code as people write it: magics in .py files, module-level names that definitions read,
a syntax error that costs one block, np and math without imports, and warnings that matter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from optconform.harness.checking.results import CaseResult
from optconform.harness.checking.runner import warnings_that_matter
from optconform.harness.target.loader import load_source

ROOT = Path(__file__).resolve().parents[1]


def load(tmp_path, source: str, name: str = "sub.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return load_source(path)


def test_magics_and_shell_escapes_in_a_py_are_blanked(tmp_path):
    module, warnings = load(tmp_path, """
        import numpy as np
        %matplotlib inline
        !pip install numpy
        def f(x):
            return x + 1
    """)
    assert module.f(1) == 2 and warnings == []


def test_assignments_that_definitions_read_are_taken_and_the_rest_never_runs(tmp_path):
    marker = tmp_path / "ran"
    module, warnings = load(tmp_path, f"""
        import numpy as np
        sqrt = np.sqrt
        EPS = 10**-8
        FLOAT = np.float64
        BASE = 2.0
        SCALE = BASE * 3
        def update_lr(x):
            return sqrt(x).astype(FLOAT) + EPS * SCALE
        parameters = open({str(marker)!r}, "w").write("top-level work ran")
        for step in range(10**9):
            pass
    """)
    assert module.update_lr(np.array([4.0]))[0] == 2.0 + 6e-8
    assert not marker.exists() and not hasattr(module, "parameters")
    assert warnings == []


def test_an_assignment_that_fails_or_hangs_is_a_warning_naming_its_line(tmp_path):
    module, warnings = load(tmp_path, """
        import numpy as np
        RATE = 1 / 0
        def spin():
            while True:
                pass
        SLOW = spin()
        def update_lr():
            return RATE, SLOW
    """)
    assert callable(module.update_lr)
    assert any("sub.py line 3: skipped (ZeroDivisionError" in w and "[binds RATE]" in w for w in warnings), warnings
    assert any("sub.py line 7: skipped (took longer than" in w for w in warnings), warnings


def test_a_syntax_error_costs_only_its_block(tmp_path):
    module, warnings = load(tmp_path, """
        import numpy as np
        def broken(x:
            return x
        def fine(x):
            return 2 * x
    """)
    assert module.fine(2) == 4 and not hasattr(module, "broken")
    assert len(warnings) == 1 and "sub.py line 3: syntax error" in warnings[0] and "[defines broken]" in warnings[0]


def test_np_and_math_are_provided_with_a_warning(tmp_path):
    module, warnings = load(tmp_path, """
        def f(x):
            return np.floor(x) + math.floor(x)
    """)
    assert module.f(2.5) == 4.0
    assert sorted(w.split(": uses ")[1].split()[0] for w in warnings) == ["math", "np"]
    _, quiet = load(tmp_path, """
        import math
        import numpy as np
        def f(x):
            return np.floor(x) + math.floor(x)
    """, name="imports.py")
    assert quiet == []


def test_a_failed_import_is_shown_only_beside_the_errors_that_needed_it():
    warning = "sub.py line 2: skipped (ModuleNotFoundError: No module named 'matplotlib') [binds plt]"
    unrelated = CaseResult("a", "adam.update", "error", "ValueError: shapes (2,3) and (3,3) not aligned")
    assert warnings_that_matter([warning], [unrelated]) == []
    needed = CaseResult("b", "adam.update", "error", "NameError: name 'plt' is not defined (at sub.py:9)")
    kept = warnings_that_matter([warning], [unrelated, needed])
    assert kept == [warning.rsplit(" [binds", 1)[0]]
    assert "No module named 'matplotlib'" in needed.message and "matplotlib" not in unrelated.message
    again = [CaseResult(k, "adam.update", "error", "NameError: name 'plt' is not defined (at sub.py:9)")
             for k in "cde"]
    warnings_that_matter([warning], again)
    assert [("matplotlib" in r.message) for r in again] == [True, False, False]  # said once, not on every case


def test_course_helper_imports_do_not_reach_the_report_of_a_correct_submission():
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(ROOT / "examples/course/course_2021.py"),
                           "--format", "json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    warnings = json.loads(done.stdout)["warnings"]  # the course has no RMSprop: said once, nothing else
    assert len(warnings) == 1 and warnings[0].startswith("not checked") and "rmsprop" in warnings[0], warnings


def test_a_load_error_still_writes_the_requested_report(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [', encoding="utf-8")
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(broken), "--format", "json",
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["summary"]["errors"] == report["summary"]["max_score"] > 0 and report["summary"]["passed"] == 0
    assert all(c["status"] == "error" and "not a notebook" in c["message"] for c in report["cases"])


def test_a_constant_in_one_notebook_cell_serves_a_function_in_another(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = tmp_path / "cells.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("import numpy as np\nEPS = 10**-8"),
                                       new_code_cell("def update_lr(x):\n    return x + EPS"),
                                       new_code_cell("result = f(1)\nprint(result)")]), str(path))
    module, warnings = load_source(path)
    assert module.update_lr(1.0) == 1.0 + 1e-8 and not hasattr(module, "result") and warnings == []


def test_imports_no_definition_uses_are_not_run(tmp_path):
    from optconform.harness.target.loader import load_source

    path = tmp_path / "sub.py"
    path.write_text(textwrap.dedent("""
        import numpy as np
        import json
        import matplotlib_that_is_not_here.pyplot as plt   # a plot the grader never draws
        from os.path import join as _unused_join
        from string import *                               # star: whatever it binds may be used

        def initialize_velocity(parameters):
            return {"d" + k: np.zeros_like(p) for k, p in json.loads(json.dumps(sorted(parameters))) and
                    parameters.items()}

        def letters():
            return ascii_lowercase
    """))
    module, warnings = load_source(path)
    assert not any("matplotlib_that_is_not_here" in w for w in warnings)  # never imported, nothing to say
    assert "plt" not in module.__dict__ and "_unused_join" not in module.__dict__
    assert module.letters() == "abcdefghijklmnopqrstuvwxyz" and "json" in module.__dict__


# --------------------------------------------------------------------------- notebooks read without nbformat


def _nbformat_code_cells(path: Path) -> list[str]:
    """nbformat's reading: its reader, then conversion to version 4 (which refuses a missing ``metadata``)."""
    import nbformat
    import nbformat.reader

    notebook = nbformat.convert(nbformat.reader.reads(path.read_text(encoding="utf-8")), 4)
    return [cell.get("source", "") for cell in notebook.cells if cell.get("cell_type") == "code"]


def test_a_version_4_notebook_is_read_as_nbformat_reads_it_and_without_importing_it(tmp_path):
    """The child reads version-4 notebooks itself (importing nbformat costs as much as NumPy, per
    submission): whatever the source's form, its cells are exactly nbformat's, and nbformat is not loaded."""
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "text"]},
             {"cell_type": "code", "metadata": {}, "source": ["import numpy as np\n", "EPS = 1e-8\n", ""],
              "outputs": [], "execution_count": None},
             {"cell_type": "code", "metadata": {}, "source": "def update_lr(x):\n    return x + EPS",
              "outputs": [], "execution_count": 3},
             {"cell_type": "code", "metadata": {}, "source": [], "outputs": [], "execution_count": None},
             {"cell_type": "raw", "metadata": {}, "source": "def update_lr(x): return 0"}]
    path = tmp_path / "v4.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 2, "metadata": {}, "cells": cells}),
                    encoding="utf-8")
    probe = ("import sys, json; from pathlib import Path; from optconform.harness.target.loader import notebook_cells, "
             "load_source; cells = notebook_cells(Path(sys.argv[1])); module, _ = load_source(Path(sys.argv[1])); "
             "print(json.dumps([cells, module.update_lr(1.0), 'nbformat' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cells_read, value, nbformat_loaded = json.loads(done.stdout)
    assert cells_read == _nbformat_code_cells(path) == ["import numpy as np\nEPS = 1e-8\n",
                                                        "def update_lr(x):\n    return x + EPS", ""]
    assert value == 1.0 + 1e-8 and nbformat_loaded is False


def test_every_shipped_notebook_and_older_versions_read_as_nbformat_reads_them(tmp_path):
    import nbformat
    from nbformat.v3 import new_code_cell, new_notebook, new_worksheet

    from optconform.harness.target.loader import notebook_cells

    old = tmp_path / "v3.ipynb"
    old.write_text(nbformat.v3.writes_json(new_notebook(worksheets=[new_worksheet(cells=[
        new_code_cell(input="import numpy as np\nEPS = 1e-8"), new_code_cell(input="def f(x):\n    return x")])])),
        encoding="utf-8")
    odd = tmp_path / "odd.ipynb"  # a version-4 file out of shape is left to nbformat, which reads what it can
    odd.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                               "cells": [{"cell_type": "code", "source": ["x = 1\n", 2]}, {"source": "y"}]}))
    notebooks = [*ROOT.rglob("*.ipynb"), old]
    assert len(notebooks) >= 3
    for path in notebooks:
        assert notebook_cells(path) == _nbformat_code_cells(path), path
    assert notebook_cells(old) == ["import numpy as np\nEPS = 1e-8", "def f(x):\n    return x"]
    try:
        expected = _nbformat_code_cells(odd)
    except Exception:  # noqa: BLE001 - nbformat refuses it: so must we, with a one-line LoadError
        expected = None
    from optconform.harness.target.loader import LoadError

    try:
        got = notebook_cells(odd)
    except LoadError:
        got = None
    assert got == expected


def test_any_version_4_document_reads_as_nbformat_reads_it_or_is_refused_as_it_refuses_it(tmp_path):
    """Hypothesis over notebook-shaped JSON, in shape and out: the child's reading and nbformat's agree."""
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    from optconform.harness.target.loader import LoadError, notebook_cells

    text = st.text(alphabet="ab\n x=1#", max_size=12)
    lines = st.one_of(text, st.lists(text, max_size=3), st.lists(st.one_of(text, st.integers()), max_size=3),
                      st.integers(), st.none())
    metadata = st.sampled_from([{}, {"trusted": True}, [], 3])
    output = st.one_of(st.fixed_dictionaries({"output_type": st.sampled_from(["stream", "error", ""]),
                                              "text": lines}),
                       st.fixed_dictionaries({"output_type": st.sampled_from(["execute_result", "display_data"]),
                                              "data": st.one_of(st.just({"text/plain": ["a", "b"]}),
                                                                st.just({"text/plain": [1]}), st.just([]))}),
                       st.integers())
    cell = st.fixed_dictionaries({}, optional={"cell_type": st.sampled_from(["code", "markdown", "raw", "other", 3]),
                                               "metadata": metadata, "source": lines,
                                               "outputs": st.one_of(st.lists(output, max_size=2), st.just(3)),
                                               "attachments": st.sampled_from([{}, {"a.png": {"image/png": "x"}},
                                                                               {"a.png": 3}, []])})
    document = st.fixed_dictionaries({"nbformat": st.just(4), "nbformat_minor": st.integers(0, 5),
                                      "cells": st.lists(cell, max_size=4)}, optional={"metadata": metadata})

    def read(path, reader):
        try:
            return reader(path)
        except Exception as error:  # noqa: BLE001 - nbformat's own refusals come in many kinds
            return "refused" if reader is _nbformat_code_cells or isinstance(error, LoadError) else error

    @settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(document)
    @example({'nbformat': 4, 'nbformat_minor': 0, 'metadata': {}, 'cells': [
        {'metadata': {}, 'cell_type': 'code'}, {'metadata': {}, 'cell_type': 'markdown', 'source': [0]}]})
    def agree(notebook):
        path = tmp_path / "generated.ipynb"
        path.write_text(json.dumps(notebook), encoding="utf-8")
        ours, theirs = read(path, notebook_cells), read(path, _nbformat_code_cells)
        if isinstance(theirs, list) and not all(isinstance(source, str) for source in theirs):
            theirs = "refused"  # nbformat passes a source that is not text on; the child cannot run it
        assert ours == theirs, (notebook, ours, theirs)

    agree()


def test_only_what_the_graded_functions_reach_runs(tmp_path):
    """An import or assignment only an ungraded function (the course's model()) reads never runs, nor does a
    guarded try: that nothing reads; a helper a graded function calls gets what it reads."""
    marks = {name: tmp_path / name for name in ("plot", "guarded", "helper")}
    module, warnings = load(tmp_path, f"""
        import numpy as np
        plt = open({str(marks["plot"])!r}, "w")
        try:
            trained = open({str(marks["guarded"])!r}, "w")
        except OSError:
            trained = None
        HALF = open({str(marks["helper"])!r}, "w") and 0.5
        def model(X):
            plt.write("training")
            return trained
        def _halve(x):
            return x * HALF
        def update_lr(learning_rate0, epoch_num, decay_rate):
            return _halve(learning_rate0) / (1 + decay_rate * epoch_num)
    """)
    assert module.update_lr(1.0, 0, 1.0) == 0.5 and callable(module.model)
    assert marks["helper"].exists() and not marks["plot"].exists() and not marks["guarded"].exists()
    assert warnings == []


def test_a_file_saved_as_latin_1_is_read_as_windows_1252_with_a_warning(tmp_path):
    from optconform.harness.target.loader import load_source

    path = tmp_path / "latin.py"
    path.write_bytes("# résumé\ndef update_lr(learning_rate0, epoch_num, decay_rate):\n    'café'\n"
                     "    return learning_rate0 / (1 + decay_rate * epoch_num)\n".encode("latin-1"))
    module, warnings = load_source(path)
    assert module.update_lr(1.0, 1, 1.0) == 0.5 and module.update_lr.__doc__ == "café"
    assert warnings == ["latin.py is not UTF-8 and declares no encoding: read as Windows-1252 (Latin-1); "
                        "save it as UTF-8"]
    declared = tmp_path / "declared.py"  # a coding line is honoured as Python honours it: no warning
    declared.write_bytes("# -*- coding: latin-1 -*-\ndef update_lr(learning_rate0, epoch_num, decay_rate):\n"
                         "    'café'\n".encode("latin-1"))
    module, warnings = load_source(declared)
    assert module.update_lr.__doc__ == "café" and warnings == []
