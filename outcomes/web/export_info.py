"""What a download carries about its view: a file name with the data-through date and filters, and the
"About" sheet of an Excel file."""

from __future__ import annotations

import datetime as dt

from outcomes.catalog.params import frozen
from outcomes.privacy import suppress as sup
from outcomes.web import context
from outcomes.web.database import info


def _view() -> tuple[dt.date, dict]:
    run = context.current()
    return context.once(
        ("view", run.version, frozen(run.filters)),
        lambda: (info(run.version)["data_through"], {k: v for k, v in run.filters.items() if v is not None}),
    )


def file_name(stem: str, ext: str) -> str:
    """`stem` with this view's data-through date and filters (outcomes.present.files.export_name)."""
    from outcomes.present.files import export_name

    through, filters = _view()
    return export_name(stem, ext, through, filters)


def about(title: str, extra: dict | None = None) -> dict:
    """The rows of an Excel file's About sheet for this view."""
    from outcomes.present.files import OTHER_DECIMALS, RATE_DECIMALS
    from outcomes.web.sidebar import filters_text

    through, filters = _view()
    return {
        "Table": title,
        "Data through": f"{through:%-d %B %Y}",
        "Filters": filters_text(filters),
        **(extra or {}),
        "Hidden cells": " · ".join([sup.SMALL_NOTE, sup.FEW_NOTE, sup.COMPLEMENT_NOTE])
        + f". The column {sup.HIDDEN_COLUMN!r} lists each row's hidden cells and why "
        f"({sup.SMALL} or {sup.COMPLEMENT}).",
        "Rounding": f"rates and shares to {RATE_DECIMALS} decimals (0.1234 = 12.34%), other decimals to "
        f"{OTHER_DECIMALS}.",
    }


def values_text(params: dict) -> str:
    """A query's values in words: "window_days = 14; start = 2025-01-01" ("defaults" when none)."""
    shown = []
    for k, v in params.items():
        if v is None:
            continue
        text = ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        shown.append(f"{k} = {text}")
    return "; ".join(shown) or "defaults"
