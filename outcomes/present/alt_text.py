"""A chart's text alternative: one or two sentences, worked out from its chart spec and its suppressed rows.

The same rows the chart draws (hidden cells are missing), so the text never says more than the chart does.
"""

from __future__ import annotations

import pandas as pd

from outcomes.present.theme import is_rate, label, pretty

MAX_SERIES = 4  # more lines than this read as a list nobody follows: give the highest and lowest instead
# what one point on an x axis of this name is called ("2 of 22 months hidden")
UNITS = {"month": "month", "week_start": "week", "week": "week", "day": "day", "period": "period"}


def _values(chart: dict) -> dict[str, str]:
    """The value columns a chart draws, with the words for each."""
    for key in ("ys", "measures"):
        if isinstance(chart.get(key), dict):
            return {str(k): str(v) for k, v in chart[key].items()}
    if isinstance(chart.get("stages"), dict):
        return {str(k): str(v) for k, v in chart["stages"].items()}
    for key in ("rate", "z", "y", "value"):
        if chart.get(key) and not (key == "y" and chart.get("z")):
            return {chart[key]: chart.get("y_label") or label(chart[key])}
    return {}


def _long(chart: dict, df: pd.DataFrame) -> tuple[pd.DataFrame, str | None, list[str]]:
    """The rows as (series..., x, value): one row per point the chart draws."""
    values = {c: w for c, w in _values(chart).items() if c in df}
    if chart.get("kind") == "sankey":
        x = "link"
        df = df.assign(link=[f"{pretty(s)} to {pretty(t)}" for s, t in zip(df[chart["source"]], df[chart["target"]])])
    else:
        x = chart.get("x") if chart.get("x") in df else None
    series = [chart[k] for k in ("facet", "group", "color") if chart.get(k) in df and chart[k] != x]
    if chart.get("kind") == "rate_heatmap" and chart.get("y") in df:
        series.append(chart["y"])
    if x is None:  # a chart of one point per category (funnel plot): its first text column is the category
        x = next((c for c in df.columns if c not in values and not pd.api.types.is_numeric_dtype(df[c])), None)
        series = [s for s in series if s != x]
    keep = [c for c in (*series, x) if c]
    parts = []
    for col, words in values.items():
        part = df[keep].copy()
        part["value"] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        part["_col"] = col
        if len(values) > 1:
            part["_measure"] = words
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["value"]), x, series
    out = pd.concat(parts, ignore_index=True)
    if len(values) > 1:
        series = [*series, "_measure"]
    return out, x, series


def _ordered(values: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values)


def _x_text(value, column: str | None, daily: bool) -> str:
    """A point on the x axis as words: "Oct 2025", "27 Oct 2025", "day 30", "Residential"."""
    if not isinstance(value, str) and pd.isna(value):
        return ""
    if isinstance(value, pd.Timestamp) or hasattr(value, "strftime"):
        return f"{pd.Timestamp(value):%-d %b %Y}" if daily else f"{pd.Timestamp(value):%b %Y}"
    if column and pd.api.types.is_number(value) and not isinstance(value, bool):
        return f"{label(column).lower()} {float(value):g}"
    return pretty(value)


def _when(value, column: str | None, daily: bool) -> str:
    text = _x_text(value, column, daily)
    if isinstance(value, pd.Timestamp) or hasattr(value, "strftime"):
        return f"in the week of {text}" if daily and "week" in (column or "") else f"{'on' if daily else 'in'} {text}"
    return f"at {text}"


def _number(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.0%}"
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.1f}"


def _change(now: float, then: float, percent: bool, since: str) -> str:
    diff = round((now - then) * 100) if percent else now - then
    if percent:
        if diff == 0:
            return f"the same as {since}"
        return f"{abs(diff)} {'point' if abs(diff) == 1 else 'points'} {'above' if diff > 0 else 'below'} {since}"
    if round(diff, 1) == 0:
        return f"the same as {since}"
    return f"{_number(abs(diff), False)} {'more' if diff > 0 else 'fewer'} than {since}"


def _series_name(row: pd.Series, series: list[str]) -> str:
    return ", ".join(_x_text(row[s], None, False) for s in series)


def summary(chart: dict, df: pd.DataFrame, title: str) -> str:
    """One or two sentences on what a chart shows, e.g. "14-day step-down rate was 35% in Oct 2025, 4 points
    above Jan 2024; 2 of 22 months hidden." `df` holds the suppressed rows (hidden cells missing)."""
    long, x, series = _long(chart, df)
    total = len(long)
    if total == 0:
        return f"{title}: no data for these filters."
    shown = long[long["value"].notna()]
    hidden = total - len(shown)
    one_line = not series
    unit = UNITS.get(x or "", "value") if one_line else "value"
    hidden_text = f"{hidden} of {total} {unit}{'' if total == 1 else 's'} hidden"
    if shown.empty:
        return f"{title}: all {total} {unit}{'' if total == 1 else 's'} are hidden because they come from small numbers (1–10)."
    percent = chart.get("percent", True) is not False and all(is_rate(c) for c in long["_col"].unique())
    daily = bool(x) and pd.api.types.is_datetime64_any_dtype(long[x]) and x != "month" and x != "period"
    groups = (
        [(None, shown)]
        if one_line
        else [(_series_name(g.iloc[0], series), g) for _, g in shown.groupby(series, sort=False)]
    )
    parts = []
    if x and _ordered(long[x]) and (one_line or long.groupby(series).ngroups <= MAX_SERIES):
        for name, g in groups:
            g = g[g[x].notna()].sort_values(x)
            if g.empty:
                continue
            first, last = g.iloc[0], g.iloc[-1]
            text = f"{_number(last['value'], percent)} {_when(last[x], x, daily)}"
            if len(g) > 1:
                text += f", {_change(last['value'], first['value'], percent, _x_text(first[x], x, daily))}"
            parts.append(text if name is None else f"{name} {text}")
    if parts:
        sentence = f"{title} was {parts[0]}" if one_line else f"{title}: " + "; ".join(parts)
    else:
        sentence = f"{title}: " + "; ".join(_extremes(shown, x, series, percent, daily, long))
    return f"{sentence}; {hidden_text}." if hidden else f"{sentence}."


def _paren(text: str) -> str:
    return f" ({text})" if text else ""


def _extremes(shown: pd.DataFrame, x, series: list[str], percent: bool, daily: bool, long: pd.DataFrame) -> list[str]:
    """ "highest 72% (Residential), lowest 18% (PHP)", once per measure when a chart draws a few."""
    by_measure = "_measure" in series and shown["_measure"].nunique() <= 3
    rest = [s for s in series if s != "_measure"] if by_measure else series
    ordered = bool(x) and _ordered(long[x])

    def where(row) -> str:
        bits = [_series_name(row, rest)] if rest else []
        if x:
            bits.append(_x_text(row[x], x if ordered else None, daily))
        return ", ".join(b for b in bits if b)

    out = []
    for measure, g in shown.groupby("_measure", sort=False) if by_measure else [(None, shown)]:
        top, low = g.loc[g["value"].idxmax()], g.loc[g["value"].idxmin()]
        if len(g) == 1:
            text = _number(top["value"], percent) + _paren(where(top))
        else:
            text = (
                f"highest {_number(top['value'], percent)}{_paren(where(top))}, "
                f"lowest {_number(low['value'], percent)}{_paren(where(low))}"
            )
        out.append(text if measure is None else f"{measure} {text}")
    return out
