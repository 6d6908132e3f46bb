"""Atomic file writes: a temporary file beside the target, then a rename over it (never a half-written file)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` atomically: a temporary file beside ``path``, then a rename over it."""
    replace_atomically(path, (text if text.endswith("\n") else text + "\n").encode("utf-8", "replace"))


def replace_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
