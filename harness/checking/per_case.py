"""What a case's checks derive from it once and keep with it: shared by every target checked in the process."""

from __future__ import annotations

from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


def kept(case, slot: str, key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, made the first time ``case`` is asked for ``key`` under ``slot`` and kept with the case. What
    is kept depends only on the case (and the key), so every submission graded in this process shares it."""
    cache = case.__dict__.setdefault(slot, {})
    if key not in cache:
        cache[key] = make()
    return cache[key]
