"""Words people read for stored values and column names: one place for sidebar options, legends, axis titles,
tables and file headers ("self_pay" -> "Self-pay", "sober_living" -> "Sober living", "iop" -> "IOP")."""

from __future__ import annotations

# Whole values that do not read well by the general rule (underscores to spaces, first letter capital).
VALUES = {
    "self_pay": "Self-pay",
    "state_funded": "State-funded",
    "medicaid": "Medicaid",
    "medicare": "Medicare",
    "withdrawal_management": "Withdrawal management",
    "left_against_advice": "Left against advice",
    "no_show": "No-show",
    "client_cancelled": "Cancelled by client",
    "program_cancelled": "Cancelled by program",
    "stepdown": "Step-down",
    "nonbinary": "Non-binary",
    "unknown": "Unknown",
}
# Words inside a longer value or name.
WORDS = {"iop": "IOP", "php": "PHP", "op": "OP", "wm": "WM", "stepdown": "step-down", "fui": "FUI", "los": "LOS"}
# Column names, where the general rule would read oddly.
COLUMNS = {
    "attended_14d": "Attended within 14 days",
    "ci_low": "95% interval, low",
    "ci_high": "95% interval, high",
    "p25_days": "25th percentile, days",
    "p75_days": "75th percentile, days",
    "median_days": "Median days",
    "level_of_care": "Level of care",
    "to_level_of_care": "Level referred to",
    "week_start": "Week starting",
    "admit_month": "Admission month",
    "eligible_discharges": "Eligible discharges",
    "stepped_down": "Stepped down",
    "not_arrived": "Not arrived",
}


def value(v) -> str:
    """A stored category as people read it: "self_pay" -> "Self-pay", "stepdown, day" -> "Step-down, day"."""
    text = str(v)
    if text in VALUES:
        return VALUES[text]
    parts = []
    for part in text.split(", "):
        if part in VALUES:
            parts.append(VALUES[part] if not parts else VALUES[part][:1].lower() + VALUES[part][1:])
            continue
        words = " ".join(WORDS.get(w, w) for w in part.split("_"))
        parts.append(words)
    out = ", ".join(parts)
    return out[:1].upper() + out[1:]


def column(name: str) -> str:
    """A result column as a heading: "eligible_discharges" -> "Eligible discharges", "iop_rate" -> "IOP rate"."""
    if name in COLUMNS:
        return COLUMNS[name]
    words = " ".join(WORDS.get(w, w) for w in str(name).split("_"))
    return words[:1].upper() + words[1:]


def readable(table, keys=()):
    """A display table with readable column headings, and readable values in the category columns `keys`."""
    out = table.copy()
    for col in keys:
        if col in out:
            out[col] = out[col].map(lambda v: value(v) if isinstance(v, str) and v else v)
    return out.rename(columns=column)


def category_columns(df) -> list[str]:
    """The text columns of a result (its categories, e.g. site, level of care, track)."""
    import pandas as pd

    return [
        c
        for c in df.columns
        if not pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_datetime64_any_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]
