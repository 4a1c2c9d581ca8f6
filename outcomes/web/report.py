"""A director page's life: `with report_page(...) as page:` starts it, `page.panel(...)` places its queries,
and the end of the block draws every panel, the panels analysts added to the page, and the PDF button.

    with report_page("stepdown", "Step-down from residential to IOP") as page:
        window = st.segmented_control(...)
        page.panel("stepdown_rate", window_days=window)

A query whose header says `page: stepdown` is drawn on that page whether or not the page names it: before the
first named panel with a higher `order`, or at the end. Queries start on threads as they are placed and are
drawn, in page order, when the block ends, so the queries of a page run together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from outcomes.present.pdf import Chart
from outcomes.web import context, freshness, pdf, prefetch, queries
from outcomes.web import page as page_start
from outcomes.web.casemix import MODEL_PANELS
from outcomes.web.context import catalog
from outcomes.web.database import info, options
from outcomes.web.panels import Panel
from outcomes.web.sidebar import filters_text


class Page:
    """One director page while its script runs: what it has placed, what is left to draw, what goes into its PDF."""

    def __init__(self, name: str, title: str):
        self.name, self.title = name, title
        self.placed: set[str] = set()
        self.pending: list = []  # functions drawing a panel in its place, in page order
        self.charts: list[Chart] = []  # for the PDF, in page order
        self._columns: Iterator | None = None
        self._above = None  # where analysts' panels ordered before a row of columns go
        self.notice = None  # set by report_page

    def extras(self, before: int | None = None) -> list[str]:
        """Queries declaring this page that the page has not placed, by order (up to `before`)."""
        mine = sorted(
            (q for q in catalog().values() if q.page == self.name and q.name not in self.placed),
            key=lambda q: (q.order, q.name),
        )
        return [q.name for q in mine if before is None or q.order < before]

    def panel(self, name: str, **overrides) -> None:
        """Place a catalog query here, with overrides: parameter values, panel vars, chart options."""
        for extra in self.extras(before=catalog()[name].order):
            # inside columns, an earlier analyst's panel goes above them, not into a column
            self._place(extra, {}, self._above.container() if self._columns is not None else st.container())
        self._place(name, overrides, next(self._columns) if self._columns is not None else st.container())

    def _place(self, name: str, overrides: dict, slot) -> None:
        self.placed.add(name)
        with slot:
            kind = MODEL_PANELS.get(catalog()[name].model, Panel)  # a model query draws its own way
            self.pending.append(kind.of(name, overrides).start())

    @contextmanager
    def columns(self, count: int = 2, gap: str = "large"):
        """Side by side: the panels placed inside the block go into `count` columns, one each, in turn."""
        self._above = st.container()
        self._columns = iter(st.columns(count, gap=gap))
        try:
            yield self
        finally:
            self._columns = None

    def tiles(self) -> None:
        """The Overview's KPI tiles and census, placed here; their summary goes into the PDF."""
        from outcomes.web import overview

        self._later(overview.tiles)

    def signals(self) -> None:
        """The Overview's signals and alerts for the user's sites, placed here; also into the PDF."""
        from outcomes.web import signal_list

        self._later(signal_list.start)

    def _later(self, start) -> None:
        """start() in a slot of its own, now; what it returns draws there when the page is drawn."""
        slot = st.container()
        with slot:
            draw = start()

        def drawn():
            with slot:
                return draw()

        self.pending.append(drawn)

    def finish(self) -> None:
        with self.notice:
            queries.require_population()
        for extra in self.extras():
            self._place(extra, {}, st.container())
        for draw in self.pending:
            drawn = draw()  # a Chart, a list of them (a panel of several figures) or None
            self.charts += drawn if isinstance(drawn, list) else [drawn] if drawn is not None else []
        pdf.button(self.title, self.charts)


@contextmanager
def report_page(name: str, title: str):
    """Start a director page (title, what data and filters it shows, the minimum population) and draw it all
    when the block ends; then let the same page for other sites be made ready (outcomes.web.prefetch)."""
    with prefetch.drawing():
        report = _started(name, title)
        yield report
        report.finish()
    run = context.current()
    offered = [s for s in options(run.version).get("site", []) if run.scope is None or s in run.scope]
    prefetch.after_page(offered, run.filters.get("sites"))


def _started(name: str, title: str) -> Page:
    page_start.page(title)
    run = context.current()
    through = info(run.version)["data_through"]
    st.caption(
        f"Data through **{through:%d %b %Y}** · {filters_text(run.filters)} · the page address keeps these filters"
    )
    freshness.warn(through)
    queries.count_population()  # beside the page's queries; no rows reach the page before it passes
    report = Page(name, title)
    report.notice = st.container()  # where "Too few clients" goes, above the panels, if the view is too small
    return report
