"""A display table as HTML table markup (caption, column and row headers) that screen readers can walk."""

from __future__ import annotations

from html import escape

import pandas as pd

# The wrapper scrolls a wide or long table inside itself, so it takes focus (tabindex) to be scrolled by keyboard
STYLE = (
    "<style>.a11y-table{max-height:26rem;overflow:auto;margin:.25rem 0}"
    ".a11y-table table{border-collapse:collapse;font-size:.875rem;width:100%}"
    ".a11y-table caption{text-align:left;font-weight:600;padding:.25rem 0}"
    ".a11y-table th,.a11y-table td{border-bottom:1px solid #c9ccd1;padding:.2rem .5rem;text-align:left}"
    ".a11y-table thead th{position:sticky;top:0;background:#fff}"
    ".a11y-table:focus-visible{outline:2px solid #0b5cad;outline-offset:2px}</style>"
)


def html_table(table: pd.DataFrame, caption: str) -> str:
    """`table` (display strings, hidden cells already labelled) as a <table> with a <caption>, <th scope="col">
    headers and the first column as <th scope="row">, inside a focusable scrolling region."""
    head = "".join(f'<th scope="col">{escape(str(c))}</th>' for c in table.columns)
    rows = []
    for values in table.itertuples(index=False):
        cells = [escape("" if v is None else str(v)) for v in values]
        first, rest = (cells[0], cells[1:]) if cells else ("", [])
        rows.append(f'<tr><th scope="row">{first}</th>' + "".join(f"<td>{c}</td>" for c in rest) + "</tr>")
    label = escape(caption, quote=True)
    return (
        f'{STYLE}<div class="a11y-table" role="region" aria-label="{label}" tabindex="0">'
        f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
