"""The Monday view: this period's key measures against the period before, with their trends."""

from outcomes.web import overview, panels, pdf

panels.report_page("Overview")
overview.overview_tiles()
pdf.pdf_export()
