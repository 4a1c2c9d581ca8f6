"""Values made once per key and kept, for the server's threads to share."""

from __future__ import annotations

import threading
from collections import OrderedDict


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
