"""Values made once per key and kept, for the server's threads to share."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping


class Kept:
    """The `size` values last asked for, by key. Threads asking for one key at once wait for a single make()
    (and make their own if it raised); nothing is kept from a make() that raised."""

    def __init__(self, size: int):
        self.size = size
        self._values: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict = {}  # key -> Event set when that key's make() ends

    def get(self, key, make):
        """The value kept under `key` (hashable), or make()'s, kept."""
        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    return self._values[key]
                waiting = self._making.get(key)
                if waiting is None:
                    self._making[key] = threading.Event()
                    break
            waiting.wait()
        try:
            value = make()
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.size:
                    self._values.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._making.pop(key).set()

    def clear(self) -> None:
        """Forget every kept value."""
        with self._lock:
            self._values.clear()


class Later(Mapping):
    """A mapping whose values are made when first read, once, however many threads read at once: given a value,
    or a function of no arguments that makes it."""

    def __init__(self, values: dict):
        self._given = dict(values)
        self._kept = Kept(len(self._given) or 1)

    def __getitem__(self, name):
        given = self._given[name]
        if not callable(given):
            return given
        value = self._kept.get(name, given)
        self._given[name] = value  # lets go of the function and what it holds
        return value

    def __iter__(self):
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)


def later(values: Mapping, fn) -> Later:
    """fn(value) for every name of `values`, each made when first read (a Later's own values too)."""
    return Later({name: functools.partial(lambda n: fn(values[n]), name) for name in values})
