"""The contract's rules over a staged load, checked in as few scans as possible, and the publish of its tables."""

from __future__ import annotations

import datetime as dt

from outcomes.ingest import contract
from outcomes.ingest.sources import sql_str
from outcomes.ingest.staging import Staging

# The value itself is never repeated: it may be the identifier.
IDENTIFIER_MESSAGE = (
    "value looks like an identifier (an SSN, phone or record number, a date, an e-mail or street "
    "address); free-text fields must not hold identifiers (the value is not shown)"
)
# Physical order of the published tables; None keeps the file's order. Catalog queries read the base tables
# through tables built from them at load time (queries/_build), which are sorted by the dates queries filter
# on; sorting the 100M sessions as well would cost a minute of load and speed up no catalog query.
PUBLISH_ORDER = {"clients": None, "enrollments": None, "attendance": None, "transitions": None}


class Build(Staging):
    """A staged load's rule checks and publish (see Staging for how the extracts are held)."""

    def rules(self, data_through: dt.date) -> list[tuple]:
        """Every rule to check, in report order: (table, column, rule, message, where, params, scan_alone).
        A rule with scan_alone set joins or windows the table; the others are counted together in one scan."""
        out = []
        staged = [name for name in contract.TABLES if name in self.present]
        for name in staged:
            table = contract.TABLES[name]
            present = self.present[name]
            for col in table.required:
                out.append((name, col, "required", "required value is empty", f'"{col}" is null', None, False))
            for col in present:
                c = table.column(col)
                if c.allowed:
                    allowed = ", ".join(sql_str(v) for v in c.allowed)
                    out.append(
                        (
                            name,
                            col,
                            "allowed-values",
                            f"not one of: {', '.join(c.allowed)}",
                            f'"{col}" is not null and "{col}" not in ({allowed})',
                            None,
                            False,
                        )
                    )
                if c.type == "VARCHAR":
                    out.append(
                        (name, col, "nul-byte", "contains a NUL byte", f'contains("{col}", chr(0))', None, False)
                    )
            out.append(
                (
                    name,
                    table.key,
                    "unique",
                    f"duplicate {table.key} (an earlier row has the same id)",
                    f"_row in (select _row from (select _row, row_number() over (partition by {table.key} order by _row) as k from _v_{name}) where k > 1)",
                    None,
                    True,
                )
            )
            for col, parent in table.foreign_keys.items():
                # A parent with rejected lines would make every child of those lines an orphan: noise.
                if col in present and parent in staged and not self.rejected_lines.get(parent):
                    key = contract.TABLES[parent].key
                    out.append(
                        (
                            name,
                            col,
                            "foreign-key",
                            f"no such {key} in {self.label(parent)}",
                            f'"{col}" is not null and "{col}" not in (select {key} from _s_{parent})',
                            None,
                            True,
                        )
                    )
            for col in contract.DATE_COLUMNS.get(name, ()):
                if col in present:
                    out.append(
                        (
                            name,
                            col,
                            "after-data-through",
                            f"date is after the data-through date {data_through}",
                            f'"{col}" > $through',
                            {"through": data_through},
                            False,
                        )
                    )
        for name, cols in contract.FREE_TEXT.items():  # an identifier typed into a free-text field
            for col in cols:
                if name in staged and col in self.present[name]:
                    out.append(
                        (
                            name,
                            col,
                            "identifier-like-value",
                            IDENTIFIER_MESSAGE,
                            f"regexp_matches(\"{col}\", {sql_str(contract.IDENTIFIER_VALUE)}, 'i')",
                            None,
                            False,
                        )
                    )
        if "clients" in staged and "birth_year" in self.present["clients"]:
            out.append(
                (
                    "clients",
                    "birth_year",
                    "range",
                    f"birth year must be from 1900 to {data_through.year}",
                    "birth_year not between 1900 and $y",
                    {"y": data_through.year},
                    False,
                )
            )
        if "attendance" in staged and "duration_minutes" in self.present["attendance"]:
            out.append(
                (
                    "attendance",
                    "duration_minutes",
                    "range",
                    "duration must be from 0 to 1440 minutes",
                    "duration_minutes not between 0 and 1440",
                    None,
                    False,
                )
            )
        if "enrollments" in staged:
            cols = set(self.present["enrollments"])
            if "discharge_date" in cols:
                out.append(
                    (
                        "enrollments",
                        "discharge_date",
                        "discharge-before-admit",
                        "discharge_date is before admit_date",
                        "discharge_date < admit_date",
                        None,
                        False,
                    )
                )
            has_date = "discharge_date is not null" if "discharge_date" in cols else "false"
            has_reason = "discharge_reason is not null" if "discharge_reason" in cols else "false"
            out.append(
                (
                    "enrollments",
                    "discharge_reason",
                    "reason-without-discharge",
                    "discharge_reason given but discharge_date is empty",
                    f"{has_reason} and not ({has_date})",
                    None,
                    False,
                )
            )
            out.append(
                (
                    "enrollments",
                    "discharge_reason",
                    "discharge-without-reason",
                    "discharge_date given but discharge_reason is empty",
                    f"{has_date} and not ({has_reason})",
                    None,
                    False,
                )
            )
        return out

    def check_rules(self, data_through: dt.date) -> None:
        """Check every rule. The simple rules of a table are counted in one scan of it; only rules that some
        row breaks are then read again for the rows to report."""
        rules = self.rules(data_through)
        totals: dict[int, int] = {}
        for name in self.present:
            simple = [(i, r) for i, r in enumerate(rules) if r[0] == name and not r[6]]
            if not simple:
                continue
            params = {k: v for _, r in simple for k, v in (r[5] or {}).items()}
            counts = ", ".join(f"count(*) filter (where {r[4]})" for _, r in simple)
            found = self.con.execute(f"select {counts} from _v_{name}", params).fetchone()
            totals |= {i: n for (i, _), n in zip(simple, found)}
        for i, r in enumerate(rules):
            if r[2] == "unique" and self._ascending(r[0]):
                totals[i] = 0
        for i, (name, column, rule, message, where, params, _) in enumerate(rules):
            self._rule(name, column, rule, message, where, params, totals.get(i))

    def _ascending(self, name: str) -> bool:
        """Whether the key of `name` has no empty value and each row's key is greater than the one before.
        Then every key is distinct, whatever order the rows were compared in, and the costly duplicate search
        (a sort or hash of every key) can be skipped: extracts are often in key order."""
        key = contract.TABLES[name].key
        if key not in self.present[name]:
            return False
        empty, out_of_order = self.con.execute(
            f'select count(*) filter (where "{key}" is null), count(*) filter (where prev >= "{key}") '
            f'from (select "{key}", lag("{key}") over () as prev from _s_{name})'
        ).fetchone()
        return empty == 0 and out_of_order == 0

    def latest_date(self) -> dt.date | None:
        parts = [
            f'select max("{col}") as d from _s_{name}'
            for name, cols in contract.DATE_COLUMNS.items()
            if name in self.present
            for col in cols
            if col in self.present[name]
        ]
        return self.con.execute(f"select max(d) from ({' union all '.join(parts)})").fetchone()[0] if parts else None

    def publish_tables(self) -> None:
        for name, table in contract.TABLES.items():
            present, order = self.present[name], PUBLISH_ORDER[name]
            self.con.execute(f"drop view _v_{name}")
            if order is None and present == [c.name for c in table.columns]:
                self.con.execute(f"alter table _s_{name} rename to {name}")  # no copy of the biggest table
                continue
            cols = [
                f'"{c.name}"' if c.name in present else f'cast(null as {c.type}) as "{c.name}"' for c in table.columns
            ]
            by = f" order by {order}" if order else ""
            self.con.execute(f"create table {name} as select {', '.join(cols)} from _s_{name}{by}")
            self.con.execute(f"drop table _s_{name}")
