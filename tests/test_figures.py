"""Every chart the catalog declares, built on the demo as a page builds it (program events drawn), is what
Plotly's own checks make of it: some figures are built without those checks, for speed, and this is where a
misspelt or unconverted property would show."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from outcomes.catalog import runner
from outcomes.present import annotation_marks, charts
from outcomes.web.panels import keep_rows
from outcomes.web.queries import Rows


def _drawn(con, catalog, name, sites):
    query = catalog[name]
    result = runner.run(con, query, {"sites": sites} if sites and query.takes("sites") else {})
    values = {n: p.default for n, p in query.params.items()} | result.params | (query.panel.get("vars") or {})
    chart = charts.spec(query.chart, values, {})
    rows = keep_rows(Rows(result.data, result.mask, result.reasons), query.panel.get("rows"))  # as the panel does
    fig = charts.figure(
        chart, rows.data, query.unstable_below, reasons=rows.reasons, count_columns=query.suppress.get("counts", [])
    )
    return annotation_marks.draw(fig, runner.run(con, catalog["annotations"], {}).data)


def _pruned(value):
    """Without empty objects (an unset title is {} on one side and absent on the other)."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {} and v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def test_every_catalog_chart_is_what_plotly_checks_make_of_it(demo_db, catalog):
    built = 0
    for name, query in sorted(catalog.items()):
        if not query.chart or query.chart.get("kind") in (None, "table"):
            continue
        for sites in (None, ["Riverside"]):
            fig = _drawn(demo_db, catalog, name, sites)
            if fig is None:
                continue
            checked = go.Figure(fig.to_dict())  # raises on a property Plotly does not know
            assert _pruned(json.loads(pio.to_json(fig))) == _pruned(json.loads(pio.to_json(checked))), (name, sites)
            built += 1
    assert built >= 40


@pytest.mark.parametrize("name", ["attendance_weekly", "stepdown_by_site"])
def test_an_event_is_drawn_on_every_panel_of_a_grid(demo_db, catalog, name):
    fig = _drawn(demo_db, catalog, name, None)
    panels = {(t.xaxis or "x", t.yaxis or "y") for t in fig.data if t.name != annotation_marks.NAME}
    lines = {
        (s.xref, s.yref.replace(" domain", ""))
        for s in fig.layout.shapes
        if s.line.color == annotation_marks.EVENT_COLOUR
    }
    assert len(panels) > 1 and lines == panels
