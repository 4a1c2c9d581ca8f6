"""outcomes/kept.py: values made once per key, and mappings whose values are made when first read."""

from __future__ import annotations

import threading
import time

import pytest

from outcomes.kept import Kept, Later, later


def test_threads_asking_for_one_key_wait_for_a_single_make():
    kept, made = Kept(4), []

    def make():
        made.append(1)
        time.sleep(0.05)
        return "value"

    got = []
    threads = [threading.Thread(target=lambda: got.append(kept.get("k", make))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["value"] * 5 and len(made) == 1


def test_a_make_that_raised_keeps_nothing():
    kept = Kept(4)
    with pytest.raises(ZeroDivisionError):
        kept.get("k", lambda: 1 / 0)
    assert kept.get("k", lambda: 2) == 2


def test_later_makes_a_value_when_first_read_and_once():
    made = []

    def effects():
        made.append(1)
        return "effects"

    details = Later({"model": "summary", "effects": effects})
    assert list(details) == ["model", "effects"] and len(details) == 2 and made == []
    assert details["model"] == "summary" and made == []
    assert details["effects"] == details["effects"] == "effects" and made == [1]


def test_later_of_a_later_reads_through_without_making_the_rest():
    made = []
    details = Later({"a": lambda: made.append("a") or 1, "b": lambda: made.append("b") or 2})
    doubled = later(details, lambda v: v * 2)
    assert made == [] and set(doubled) == {"a", "b"}
    assert doubled["b"] == 4 and made == ["b"]
    assert dict(doubled) == {"a": 2, "b": 4} and made == ["b", "a"]
