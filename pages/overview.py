"""The Monday view: this period's key measures against the period before, with their trends."""

from outcomes import ui

ui.report_page("Overview")
ui.overview_tiles()
ui.pdf_export()
