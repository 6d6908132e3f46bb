"""Only whole files: the gradebook and feedback are written beside themselves and renamed over the old ones."""

from __future__ import annotations

import os

import pytest

from optconform.harness.grading import atomic
from optconform.harness.grading.atomic import replace_atomically, write_atomically


class _Interrupted(BaseException):
    """What a kill in the middle of a write looks like from the inside (KeyboardInterrupt, SystemExit)."""


def test_an_interrupted_write_leaves_the_old_file_whole_and_no_temporary(tmp_path, monkeypatch):
    book = tmp_path / "gradebook.csv"
    book.write_text("student,score\nada,10\n", encoding="utf-8")

    real_fdopen = os.fdopen

    def half_then_killed(handle, mode="r", *args, **kwargs):
        stream = real_fdopen(handle, mode, *args, **kwargs)
        write = stream.write

        def partial(data):
            write(data[: len(data) // 2])
            raise _Interrupted()

        stream.write = partial
        return stream

    monkeypatch.setattr(atomic.os, "fdopen", half_then_killed)
    with pytest.raises(_Interrupted):
        write_atomically(book, "student,score\nada,10\nalan,7\n")
    assert book.read_text(encoding="utf-8") == "student,score\nada,10\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradebook.csv"]


def test_a_failed_rename_leaves_the_old_file_whole_and_no_temporary(tmp_path, monkeypatch):
    book = tmp_path / "gradebook.json"
    book.write_bytes(b"{}")
    monkeypatch.setattr(atomic.os, "replace", lambda *args: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        replace_atomically(book, b'{"submissions": []}')
    assert book.read_bytes() == b"{}" and sorted(p.name for p in tmp_path.iterdir()) == ["gradebook.json"]


def test_a_whole_write_replaces_the_file(tmp_path):
    book = tmp_path / "class.md"
    book.write_text("old", encoding="utf-8")
    write_atomically(book, "new")
    assert book.read_text(encoding="utf-8") == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["class.md"]
