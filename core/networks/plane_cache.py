"""Data derived from a latent's tri-planes at inference (the occupancy grid, the folded first layer),
cached with the planes tensor itself: built by the first render of those planes, reused by every
later one (the viewer's frames and tiles, a video's frames), dropped when the planes are.

An entry is rebuilt when the planes were modified in place (their version counter moved) or its key
changed (the key holds the generator, its decoder weights' versions and the settings).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import torch

# id(planes) -> (weak reference to the planes, {key: (version, value)}); keyed by id because tensors
# compare elementwise, which a WeakKeyDictionary would call
_cache: dict[int, tuple[weakref.ref, dict]] = {}
_lock = threading.Lock()


def _slot(planes: torch.Tensor) -> dict:
    k = id(planes)
    entry = _cache.get(k)
    if entry is None or entry[0]() is not planes:
        def forget(ref, k=k):
            with _lock:
                if k in _cache and _cache[k][0] is ref:
                    del _cache[k]
        entry = (weakref.ref(planes, forget), {})
        _cache[k] = entry
    return entry[1]


def cached(planes: torch.Tensor, key: tuple, build: Callable[[], Any]) -> Any:
    """build() once per (planes, key, planes version); the value must not hold `planes` itself."""
    with _lock:
        slot = _slot(planes)
        hit = slot.get(key)
    if hit is not None and hit[0] == planes._version:
        return hit[1]
    value = build()
    with _lock:
        slot[key] = (planes._version, value)
    return value


def has(planes: torch.Tensor, key: tuple) -> bool:
    """Whether `cached(planes, key, ...)` would return without building."""
    with _lock:
        entry = _cache.get(id(planes))
        hit = entry[1].get(key) if entry is not None and entry[0]() is planes else None
    return hit is not None and hit[0] == planes._version


def clear() -> None:
    """Forget every entry (tests, benchmarks timing a first frame)."""
    with _lock:
        _cache.clear()
