"""Figures and display tables already built, reused when a rerun shows the same rows the same way."""

from __future__ import annotations

import datetime as dt
import threading

import streamlit as st

# Figures and display tables already built, by everything they are built from (process-wide, least recently
# used dropped first): a rerun that shows the same rows the same way reuses them. Building the Plotly figures
# is most of a page's time once its queries are cached; the prefetch thread builds them for the other site
# choices too (about four entries per chart per choice). Held as a cache resource, so clearing Streamlit's
# caches clears it too.
_BUILT_MAX = 2048


_KEYABLE = (int, float, str, bool, type(None), dt.date)


@st.cache_resource(show_spinner=False)
def _built_store() -> tuple[dict, threading.Lock]:
    return {}, threading.Lock()  # sessions run in threads of their own


def reused(key, make):
    """make(), or what it returned for the same key before; key None: make() every time."""
    if key is None:
        return make()
    store, lock = _built_store()
    with lock:
        value = store.pop(key, None)
    if value is None:
        value = make()
    with lock:
        store[key] = value
        while len(store) > _BUILT_MAX:
            store.pop(next(iter(store)))
    return value


def chart_key(chart) -> tuple | None:
    """What a page's chart function draws besides its rows: its code, the values it closes over and the simple
    globals it names. None (draw it every time) when something else could change what it draws."""
    code = getattr(chart, "__code__", None)
    if code is None or "session_state" in code.co_names or any(hasattr(c, "co_code") for c in code.co_consts):
        return None
    values = [c.cell_contents for c in chart.__closure__ or ()]
    names = [(n, chart.__globals__[n]) for n in code.co_names if n in chart.__globals__]
    if any(callable(v) and getattr(v, "__module__", None) == chart.__module__ for _, v in names):
        return None  # a helper of the page itself may read anything
    names = [(n, v) for n, v in names if not (callable(v) or type(v).__name__ == "module")]
    try:
        key = (code, tuple(values), tuple(names))
        hash(key)
    except TypeError:
        return None
    return key if all(_keyable(v) for v in values + [v for _, v in names]) else None


def _keyable(value) -> bool:
    """A value that stands for what it holds: simple, or a tuple or frozen dataclass of such values."""
    import dataclasses

    if isinstance(value, (tuple, frozenset)):
        return all(_keyable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.__dataclass_params__.frozen and all(
            _keyable(getattr(value, f.name)) for f in dataclasses.fields(value)
        )
    return isinstance(value, _KEYABLE)
