"""Optional frameworks in the tests: skipped where they are not installed, never in CI.

``.ci/run`` installs every optional component (torch, JAX and optax, Dask, node, bubblewrap, Chromium), so
there a missing or broken one fails the run instead of turning its tests into skips.
"""

from __future__ import annotations

import importlib
import os

import pytest


def require(name: str):
    """The module ``name``; outside CI a missing one skips the test. ``name`` may be a port, whose import
    raises ``ImportError`` (saying what to install) when its framework is missing: that skips too."""
    if os.environ.get("CI"):
        return importlib.import_module(name)
    try:
        return importlib.import_module(name)
    except ImportError as error:
        pytest.skip(f"could not import {name!r}: {error}")
