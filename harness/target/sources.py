"""A submission's source text: a ``.py`` file in the encoding Python reads it in, a notebook's code cells.

Read in the sandboxed child (:mod:`.loader`) and by the grader choosing among a student's
files (:mod:`optconform.harness.grading.choice`), so that both see the same text. Paths are
read with ``os`` alone: importing pathlib would cost every sandboxed child some 5 ms.
"""

from __future__ import annotations

import os


class LoadError(Exception):
    """A target that cannot be loaded; the message is one line naming file and line."""


def python_text(path: str | os.PathLike[str], warnings: list[str]) -> str:
    """A ``.py`` file's text in the encoding Python itself would read it in (UTF-8, a BOM, or a ``# coding:``
    line); a file that is none of these, most often one saved as Latin-1 or Windows-1252 by an editor (an accented
    letter in a comment), is read as Windows-1252, with a warning, rather than lost."""
    import io
    import tokenize

    with open(path, "rb") as file:
        data = file.read()
    name = os.path.basename(path)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        if b"\x00" in data:  # UTF-16, or not text at all: no 8-bit reading of it is the student's code
            raise LoadError(f"{name}: cannot read (not UTF-8 text: it holds NUL bytes)") from None
        warnings.append(f"{name} is not UTF-8 and declares no encoding: read as Windows-1252 (Latin-1); "
                        "save it as UTF-8")
        return data.decode("cp1252", errors="replace")


def notebook_cells(path: str | os.PathLike[str]) -> list[str]:
    """The code cells of a notebook: a version-4 notebook read as its format defines it,
    any other version (or a version-4 file out of shape) read with nbformat and converted to 4.

    A version-4 notebook is JSON whose ``cells`` each have a ``cell_type`` and a
    ``source``, a string or a list of strings joined as they are (nbformat's own
    reading of it); that is all a grader needs of it. Importing nbformat costs about
    50 ms (its validator compiles JSON Schema machinery), as much as NumPy's import,
    in every sandboxed child, so it is imported only for the notebooks that need it.
    Neither road validates against the notebook schema: a notebook Jupyter itself
    runs despite a stray field should be graded, not refused.
    """
    import json

    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
        document = json.loads(text)
    except OSError as error:
        raise LoadError(f"{name}: cannot read ({error.strerror or error})") from None
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nesting too deep
        raise LoadError(f"{name}: not a notebook: not valid JSON ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(document, dict) or "nbformat" not in document or not ({"cells", "worksheets"} & set(document)):
        raise LoadError(f"{name}: not a notebook: JSON without the notebook keys 'nbformat' and 'cells' "
                        "(or, before version 4, 'worksheets')")
    cells = _version_4_code_cells(document)
    if cells is None:
        cells = _converted_code_cells(path, text)
    for number, source in enumerate(cells, 1):
        if not isinstance(source, str):
            raise LoadError(f"{name}: not a readable notebook (code cell {number}'s source is not text)")
    return cells


def _version_4_code_cells(document: dict) -> list[str] | None:
    """The code cells' sources of a well-formed version-4 notebook, or None to leave it to nbformat (which
    refuses what it cannot rejoin or strip: a cell or notebook without ``metadata``, lines that are not
    strings, outputs or attachments out of shape)."""
    cells = document.get("cells")
    if document.get("nbformat") != 4 or not isinstance(cells, list) or not isinstance(document.get("metadata"), dict):
        return None
    sources = []
    for cell in cells:
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str) \
                or not isinstance(cell.get("metadata"), dict) or not _rejoins(cell):
            return None
        if cell["cell_type"] != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if not isinstance(source, str):
            return None
        sources.append(source)
    return sources


def _rejoins(cell: dict) -> bool:
    """Whether nbformat's reader would rejoin this cell's split lines without failing."""
    def lines(value) -> bool:
        return not isinstance(value, list) or all(isinstance(line, str) for line in value)

    attachments = cell.get("attachments", {})
    if not lines(cell.get("source")) or not isinstance(attachments, dict) \
            or not all(isinstance(bundle, dict) for bundle in attachments.values()):
        return False
    if cell["cell_type"] != "code":
        return True
    outputs = cell.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(output, dict) for output in outputs):
        return False
    for output in outputs:
        if output.get("output_type", "") in ("execute_result", "display_data"):
            if not isinstance(output.get("data", {}), dict):
                return False
        elif output.get("output_type", "") and not lines(output.get("text", "")):
            return False
    return True


def _converted_code_cells(path: str | os.PathLike[str], text: str) -> list[str]:
    """The code cells of a notebook of another version, read and converted to version 4 by nbformat."""
    import nbformat
    import nbformat.reader

    name = os.path.basename(path)

    try:
        notebook = nbformat.convert(nbformat.reader.reads(text), 4)
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for a broken file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LoadError(f"{name}: not a readable notebook ({reason[:160]})") from None
    cells = getattr(notebook, "cells", None)
    if not isinstance(cells, list):
        raise LoadError(f"{name}: not a notebook (no cells)")
    return [cell.get("source", "") for cell in cells if cell.get("cell_type") == "code"]
