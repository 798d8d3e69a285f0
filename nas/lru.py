"""Bounded caches: a mapping that keeps only its most recently used entries, so a long search or a long list of
architectures never grows a cache without bound."""
from __future__ import annotations

from collections import OrderedDict

from nas.errors import NasError


class LRU(OrderedDict):
    """A dict of at most ``size`` entries. Reading an entry (``[]``, ``get``, ``setdefault``) or writing one makes
    it the most recent; a write beyond ``size`` drops the least recently used. ``evicted`` counts the drops."""

    def __init__(self, size: int, items=()):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise NasError(f"a cache size must be a whole number >= 1, got {size!r}", argument="size")
        super().__init__()
        self.size, self.evicted = size, 0
        self.update(items)

    def __getitem__(self, key):
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default

    def setdefault(self, key, default=None):
        if key in self:
            return self[key]
        self[key] = default
        return default

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            super().popitem(last=False)
            self.evicted += 1

    def __reduce__(self):  # copy / pickle keep the size
        return type(self), (self.size, list(self.items()))
