"""The Monday view: this period's key measures against the period before, with their trends."""

from outcomes.web.report import report_page

with report_page("overview", "Overview") as page:
    page.tiles()
    page.signals()
