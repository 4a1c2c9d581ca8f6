"""Hidden values drawn as labelled placeholders, the legend line, readable labels, rounded and self-describing
downloads, tiles coloured only beyond chance, the stale-data warning: on small hand-made tables."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from outcomes.measures import kpis, noise
from outcomes.present import files, flow_charts, hidden, labels
from outcomes.present.control_charts import p_chart_grid, rate_p_chart
from outcomes.present.rate_charts import median_bars, rate_bars, rate_lines
from outcomes.privacy import suppress as sup
from outcomes.web.freshness import stale_text

MONTHS = pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"])


def _array(value):
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).ravel()
    return np.asarray(value, dtype=object).ravel()


def spec(fig) -> dict:
    """The figure as the browser receives it (Plotly 7 JSON, arrays base64-packed)."""
    return json.loads(fig.to_json())


def placeholder(fig) -> dict:
    return next(t for t in spec(fig)["data"] if t.get("name") == hidden.LEGEND)


def reasons_for(df: pd.DataFrame, cells: dict) -> pd.DataFrame:
    why = pd.DataFrame("", index=df.index, columns=df.columns, dtype=object)
    for (row, col), reason in cells.items():
        why.loc[row, col] = reason
    return why


def test_a_hidden_point_is_a_placeholder_at_its_month_beside_the_last_shown_value():
    # Feb hidden as small: the square sits at Feb, at January's 40% (never on 0), its hover says "too few"
    df = pd.DataFrame({"month": MONTHS, "rate": [0.4, np.nan, 0.5, 0.3], "n": [50, 8, 40, 30]})
    why = reasons_for(df, {(1, "rate"): sup.SMALL, (1, "n"): sup.SMALL})
    t = placeholder(rate_lines(df, "month", "rate", n="n", reasons=why))
    assert [str(x)[:7] for x in _array(t["x"])] == ["2025-02"]
    assert _array(t["y"]).astype(float).tolist() == [0.4]
    assert t["text"] == ["too few (from a count of 1–10)"]
    assert t["marker"]["symbol"] == hidden.SYMBOL
    # the series' own line keeps the gap: nothing joins across the hidden month
    line = next(x for x in spec(rate_lines(df, "month", "rate", n="n"))["data"] if x["name"] == "Rate")
    assert np.isnan(_array(line["y"]).astype(float)[1])


def test_a_first_hidden_point_takes_the_next_shown_value_and_zero_is_never_used():
    df = pd.DataFrame({"month": MONTHS, "rate": [np.nan, 0.0, 0.2, np.nan]})
    why = reasons_for(df, {(0, "rate"): sup.COMPLEMENT, (3, "rate"): sup.COMPLEMENT})
    t = placeholder(rate_lines(df, "month", "rate", reasons=why))
    assert _array(t["y"]).astype(float).tolist() == [0.2, 0.2]  # 0% is skipped: a square there reads as zero
    assert t["text"] == [hidden.words(sup.COMPLEMENT)] * 2 and "hidden" in t["text"][0]


def test_a_hidden_count_reads_1_10_and_without_reasons_reads_hidden():
    df = pd.DataFrame({"month": MONTHS, "active": [40.0, np.nan, 30.0, 20.0]})
    why = reasons_for(df, {(1, "active"): sup.SMALL})
    t = placeholder(rate_lines(df, "month", "active", percent=False, reasons=why, count_columns=("active",)))
    assert t["text"] == ["1–10 (too few to show)"]
    t = placeholder(rate_lines(df, "month", "active", percent=False))
    assert t["text"] == [hidden.words(sup.COMPLEMENT)]  # no reasons: never call a value small


def test_p_chart_placeholder_sits_on_the_centre_line():
    # shown: 20/50, 30/50, 10/50 -> centre 60/150 = 0.4; March hidden
    df = pd.DataFrame(
        {
            "month": MONTHS,
            "events": [20, 30, np.nan, 10],
            "n": [50, 50, np.nan, 50],
            "rate": [0.4, 0.6, np.nan, 0.2],
        }
    )
    why = reasons_for(df, {(2, "events"): sup.SMALL, (2, "n"): sup.COMPLEMENT, (2, "rate"): sup.SMALL})
    t = placeholder(rate_p_chart(df, "month", "events", "n", rate="rate", reasons=why))
    assert [str(x)[:7] for x in _array(t["x"])] == ["2025-03"]
    assert _array(t["y"]).astype(float).tolist() == pytest.approx([0.4])
    assert t["text"] == ["too few (from a count of 1–10)"]


def test_funnel_draws_a_hidden_stage_as_a_grey_labelled_bar_never_a_blank():
    # Referred 33 shown; Admitted and Attended hidden to protect a small neighbour: grey bars as wide as 33
    df = pd.DataFrame(
        {"site": ["Northside"], "referred": [33], "admitted": [pd.NA], "attended_14d": [pd.NA]},
    ).astype({"admitted": "Int64", "attended_14d": "Int64"})
    why = reasons_for(df, {(0, "admitted"): sup.COMPLEMENT, (0, "attended_14d"): sup.SMALL})
    stages = {"referred": "Referred", "admitted": "Admitted", "attended_14d": "Attended"}
    t = spec(flow_charts.funnel(df, stages, "site", reasons=why))["data"][0]
    assert _array(t["x"]).astype(float).tolist() == [33.0, 33.0, 33.0]
    assert list(t["text"]) == ["33", "hidden", "1–10"]
    assert list(t["marker"]["color"])[1:] == [hidden.FILL, hidden.FILL]


def test_rate_bars_and_median_bars_draw_hidden_ones_cross_hatched():
    df = pd.DataFrame(
        {"level": ["residential", "iop"], "done": [0.6, np.nan], "n": [80, 12]},
    )
    why = reasons_for(df, {(1, "done"): sup.COMPLEMENT})
    t = spec(rate_bars(df, "level", {"done": "Completed"}, n="n", reasons=why))["data"][0]
    assert _array(t["y"]).astype(float).tolist() == [0.6, 0.6]
    assert list(t["marker"]["pattern"]["shape"]) == ["", "x"] and list(t["text"])[1] == "hidden"
    m = pd.DataFrame({"level": ["iop", "op"], "med": [12.0, np.nan], "lo": [5.0, np.nan], "hi": [20.0, np.nan]})
    m["n"] = [40, 7]
    why = reasons_for(m, {(1, "med"): sup.SMALL, (1, "n"): sup.SMALL})
    t = spec(median_bars(m, "level", "med", "lo", "hi", "n", reasons=why))["data"][0]
    assert _array(t["y"]).astype(float).tolist() == [12.0, 12.0]
    assert list(t["marker"]["pattern"]["shape"]) == ["", "x"] and "too few" in t["x"][1]


def test_legend_line_is_there_exactly_when_something_is_hidden():
    spec_ = {"counts": ["a", "b"], "rates": {"r": ["a", "b"]}}
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4], "r": [0.1, 0.2]})
    assert hidden.legend_line(reasons_for(df, {}), spec_) == ""
    line = hidden.legend_line(reasons_for(df, {(0, "a"): sup.SMALL, (1, "b"): sup.COMPLEMENT}), spec_)
    assert line == f"{sup.SMALL_NOTE} · {sup.COMPLEMENT_NOTE}"
    # only the chart's own columns count
    assert hidden.legend_line(reasons_for(df, {(0, "a"): sup.SMALL}), spec_, ["r"]) == ""


def test_labels_read_as_people_write_them():
    assert labels.value("self_pay") == "Self-pay"
    assert labels.value("sober_living") == "Sober living"
    assert labels.value("withdrawal_management") == "Withdrawal management"
    assert labels.value("stepdown, day") == "Step-down, day"
    assert labels.value("iop") == "IOP" and labels.value("Northside") == "Northside"
    assert labels.column("attended_14d") == "Attended within 14 days"
    assert labels.column("eligible_discharges") == "Eligible discharges"
    table = pd.DataFrame({"payer": ["self_pay"], "stepdown_rate": ["41.0%"]})
    out = labels.readable(table, ["payer"])
    assert list(out.columns) == ["Payer", "Step-down rate"] and out.iloc[0, 0] == "Self-pay"


def test_csv_rounds_rates_to_four_decimals_and_other_decimals_to_two():
    df = pd.DataFrame(
        {"month": ["2025-01-01"], "n": [39], "stepdown_rate": [16 / 39], "median_days": [10 / 3], "ratio": [2 / 3]}
    )
    back = pd.read_csv(io.StringIO(files.export_csv(df)))
    assert back.iloc[0].to_dict() == {
        "month": "2025-01-01",
        "n": 39,
        "stepdown_rate": 0.4103,
        "median_days": 3.33,
        "ratio": 0.67,
    }
    assert "0.41025641" in files.to_csv(df)  # the golden/CLI form keeps full precision


def test_file_names_carry_the_data_through_date_and_filters():
    name = files.export_name(
        "stepdown_rate", "csv", dt.date(2025, 6, 30), {"sites": ["Northside"], "co_occurring": True, "payers": None}
    )
    assert name == "stepdown_rate_through-2025-06-30_sites-Northside_co_occurring-yes.csv"
    many = {"sites": [f"Site {i}" for i in range(30)]}
    long = files.export_name("x", "csv", dt.date(2025, 6, 30), many)
    assert len(long) < 110 and long.endswith(".csv")
    assert long != files.export_name("x", "csv", dt.date(2025, 6, 30), {"sites": many["sites"][:-1]})
    assert files.export_name("x", "csv") == "x.csv"


def test_excel_has_an_about_sheet_and_rounded_data():
    df = pd.DataFrame({"site": ["A", "B"], "n": [39, pd.NA], "stepdown_rate": [16 / 39, np.nan]})
    df["n"] = df["n"].astype("Int64")
    why = reasons_for(df, {(1, "n"): sup.SMALL, (1, "stepdown_rate"): sup.SMALL})
    about = {"Table": "Step-down", "Data through": "30 June 2025", "Filters": "Sites: A, B"}
    book = load_workbook(io.BytesIO(files.to_excel(df, about=about, reasons=why)))
    assert book.sheetnames == ["Data", "About", "Notice"]
    info = {r[0]: r[1] for r in book["About"].iter_rows(min_row=2, values_only=True)}
    assert info == about
    data = list(book["Data"].iter_rows(values_only=True))
    assert data[0] == ("site", "n", "stepdown_rate", "hidden")
    assert data[1] == ("A", 39, 0.4103, None) and data[2] == ("B", None, None, "n=small;stepdown_rate=small")


def test_two_proportions_colours_only_beyond_chance():
    # 16/39 against 21/37: 1.4 standard errors, noise; 16/39 against 0/37: 4.4, beyond
    assert noise.two_proportions(16 / 39, 39, 21 / 37, 37).beyond is False
    beyond = noise.two_proportions(16 / 39, 39, 0.0, 37)
    assert beyond.beyond is True and "4.4 standard errors" in beyond.reason
    assert noise.two_proportions(None, 39, 0.2, 37).beyond is None


def _kpi_rows(pairs):
    return [pd.DataFrame({"month": [pd.NaT], "r": [e / n], "n": [n]}) for e, n in pairs]


def test_a_tile_is_grey_for_a_noise_level_change_and_coloured_for_a_large_one():
    kpi = kpis.Kpi("k", "Step-down", "stepdown_rate", "r", "n", "discharges", "rate", "up")
    periods = kpis.periods_before(kpis.default_period(dt.date(2025, 6, 30)), 2)
    small = kpis.tile(kpi, _kpi_rows([(40, 100), (45, 100)]), periods)  # +5 pp on 100: 0.7 SE
    assert (small.delta, small.delta_color) == ("+5.0 pp", "off")
    assert "within chance" in small.note and "within what chance gives" in small.help
    large = kpis.tile(kpi, _kpi_rows([(200, 1000), (300, 1000)]), periods)  # +10 pp on 1,000: 5.1 SE
    assert (large.delta, large.delta_color) == ("+10.0 pp", "normal") and "beyond chance" in large.note
    worse = kpis.tile(
        kpis.Kpi("d", "Days", "q", "r", "n", "x", "rate", "down"), _kpi_rows([(200, 1000), (300, 1000)]), periods
    )
    assert worse.delta_color == "inverse"  # a rise in something that should fall: coloured as worse
    median = kpis.tile(kpis.Kpi("m", "Days", "q", "r", "n", "x", "days", "down"), _kpi_rows([(2, 1), (9, 1)]), periods)
    assert median.delta_color == "off" and "not tested" in median.note


def test_stale_warning_after_45_days():
    through = dt.date(2025, 6, 30)
    assert stale_text(through, dt.date(2025, 8, 14)) == ""  # 45 days
    text = stale_text(through, dt.date(2025, 8, 15))
    assert "46 days ago" in text and "30 June 2025" in text


def test_curves_leave_out_a_small_group_beside_large_ones_and_say_so():
    rows = []
    for name, n0 in (("direct, day", 60), ("direct, unknown", 12)):
        for day in range(3):
            rows.append({"curve": name, "day": day, "retained": 1 - 0.1 * day, "at_risk": n0 - day})
    df = pd.DataFrame(rows)
    fig = spec(flow_charts.curves(df, "day", "retained", "at_risk", color="curve"))
    assert {t["name"] for t in fig["data"]} == {"Direct, day"}
    assert "Direct, unknown (fewer than 30 at the start)" in fig["layout"]["annotations"][0]["text"]
    # every group small (a small site): all are drawn
    fig = spec(flow_charts.curves(df[df["curve"] == "direct, unknown"], "day", "retained", "at_risk", color="curve"))
    assert {t["name"].split(" (")[0] for t in fig["data"]} == {"Direct, unknown"}


def test_small_multiples_keep_one_order_whatever_the_rows_order():
    df = pd.DataFrame(
        {
            "site": ["Riverside", "Eastgate", "Northside"] * 2,
            "month": list(MONTHS[:1]) * 3 + list(MONTHS[1:2]) * 3,
            "events": [10, 20, 30] * 2,
            "n": [50] * 6,
        }
    )
    titles = [a["text"] for a in spec(p_chart_grid(df, "site", "month", "events", "n"))["layout"]["annotations"]]
    again = spec(p_chart_grid(df.iloc[::-1], "site", "month", "events", "n"))["layout"]["annotations"]
    assert titles[:3] == ["Eastgate", "Northside", "Riverside"] == [a["text"] for a in again][:3]


def test_heatmap_greys_a_hidden_cell_but_not_a_cell_with_no_row():
    from outcomes.present.rate_charts import rate_heatmap

    # Jan: weeks 1 and 2, week 2 hidden; Feb: week 1 only (week 2 not reached yet: no row)
    df = pd.DataFrame(
        {"admit_month": ["Jan", "Jan", "Feb"], "week": [1, 2, 1], "rate": [0.8, np.nan, 0.7], "n": [40, 9, 35]}
    )
    why = reasons_for(df, {(1, "rate"): sup.SMALL})
    grey, rates = spec(rate_heatmap(df, "week", "admit_month", "rate", "n", reasons=why))["data"]
    z = _array(grey["z"]).astype(float).reshape(2, 2)  # rows Feb, Jan (sorted); columns weeks 1, 2
    assert np.isnan(z[0]).all() and np.isnan(z[1, 0]) and z[1, 1] == 1.0
    assert grey["text"][1][1] == "too few" and rates["text"][1][0] == "80%"


def test_facets_built_unchecked_pass_plotly_checks_and_put_each_line_in_its_panel():
    """facet_rates builds its figure without Plotly's checks (for speed): what it builds passes them, each
    measure and facet gets its own panel, and a panel whose values are all hidden says so in its middle."""
    import plotly.graph_objects as go

    from outcomes.present.rate_charts import facet_rates

    weeks = list(MONTHS[:3]) * 4
    df = pd.DataFrame(
        {
            "week_start": weeks,
            "session_type": ["group"] * 6 + ["family"] * 6,
            "track": (["day"] * 3 + ["evening"] * 3) * 2,
            "attended": [40, 42, 41, 30, 31, 29] + [None] * 6,
            "rate": [0.8, 0.84, 0.82, 0.6, 0.62, 0.58] + [None] * 6,
            "scheduled": [50] * 6 + [None] * 6,
        }
    )
    why = reasons_for(df, {(i, c): sup.SMALL for i in range(6, 12) for c in ("rate", "attended", "scheduled")})
    fig = facet_rates(df, "week_start", {"rate": "Attended"}, "session_type", "track", "scheduled", reasons=why)
    checked = go.Figure(fig.to_dict())  # raises on any property Plotly does not know
    drawn = {(t["name"], t.get("xaxis", "x")) for t in spec(checked)["data"] if not np.isnan(_array(t["y"])).all()}
    assert drawn == {("Day", "x2"), ("Evening", "x2")}  # facets in name order: family (x), group (x2)
    texts = [a["text"] for a in spec(checked)["layout"]["annotations"]]
    assert texts[:2] == ["Family", "Group"] and "every value hidden" in texts[-1]
    assert spec(checked)["layout"]["yaxis"]["tickformat"] == ".0%"
