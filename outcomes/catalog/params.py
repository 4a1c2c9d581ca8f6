"""Typed query parameters: declaration and conversion of user input."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

PARAM_TYPES = ("date", "int", "float", "text", "list", "choice", "bool", "dates")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: object = None
    label: str = ""
    choices: tuple = ()
    options: str | None = None  # source of multiselect options, a filter_options name
    filter: bool = False  # fed by the global sidebar filter of the same name

    def coerce(self, value):
        """Convert a string, list or typed value to this parameter's Python type (None stays None)."""
        if value is None or (isinstance(value, str) and value.strip() == "" and self.type != "text"):
            return None
        try:
            if self.type == "date":
                return _date(value)
            if self.type == "dates":  # e.g. the first days of several periods
                items = value.split(",") if isinstance(value, str) else list(value)
                days = [_date(v) for v in items if not (isinstance(v, str) and not v.strip())]
                return days or None
            if self.type == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                return int(str(value).strip()) if isinstance(value, str) else int(value)
            if self.type == "float":
                return float(value)
            if self.type == "bool":
                if isinstance(value, bool):
                    return value
                text = str(value).strip().lower()
                if text in ("true", "yes", "1"):
                    return True
                if text in ("false", "no", "0"):
                    return False
                raise ValueError
            if self.type == "list":
                items = value.split(",") if isinstance(value, str) else list(value)
                items = [str(v).strip() for v in items if str(v).strip()]
                return items or None
            if self.type == "choice":
                value = str(value)
                if value not in [str(c) for c in self.choices]:
                    raise ValueError
                return value
            return str(value)
        except (ValueError, TypeError, OverflowError):
            expected = {
                "date": "a date YYYY-MM-DD",
                "dates": "dates YYYY-MM-DD, comma-separated",
                "int": "a whole number",
                "float": "a number",
                "bool": "true or false",
                "choice": "one of " + ", ".join(map(str, self.choices)),
            }
            raise ValueError(
                f"parameter {self.name}: {str(value)[:40]!r} is not {expected.get(self.type, self.type)}"
            ) from None


def frozen(values: dict) -> tuple:
    """A hashable form of parameter values (lists become tuples), the same for the same values in any order."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


def _date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip())
