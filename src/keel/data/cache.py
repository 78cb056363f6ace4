"""The cache of data source reads: expiry by age, LRU eviction by count, thread-safe.

``expires`` follows ML Launchpad: 0 never caches, -1 caches for the life of the process,
N caches for N seconds of the injected clock. Two threads asking for the same missing key
load it once; a load that raises caches nothing. Values are stored as given: data sources
hand out ``df.copy(deep=False)`` so callers cannot change what is cached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def cache_key(method: str, params: Mapping[str, Any] | None, **extra: Any) -> Hashable:
    """A stable key for a read: the method, the params (order-free) and any extra values."""
    from keel.hashing import hash_value

    return (method, hash_value(dict(params or {})), hash_value(extra) if extra else None)


class ReadCache:
    """Values by key, each kept for ``expires`` seconds, at most ``size`` of them."""

    def __init__(
        self, expires: int, size: int = 32, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if expires < -1:
            raise ValueError("expires must be -1 (forever), 0 (never) or a number of seconds")
        if size < 1:
            raise ValueError("size must be at least 1")
        self.expires = expires
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        stored_at, value = entry
        if self.expires > 0 and self.clock() - stored_at >= self.expires:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value of ``key``, or ``load()``'s result, cached."""
        if self.expires == 0:
            return load()
        with self._lock:
            hit, value = self._fresh(key)
            if hit:
                return value  # type: ignore[no-any-return]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                hit, value = self._fresh(key)  # another thread may have loaded it meanwhile
                if hit:
                    return value  # type: ignore[no-any-return]
            try:
                value = load()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self._entries[key] = (self.clock(), value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            return value
