"""How do clients move between levels of care?"""

from outcomes.present import charts
from outcomes.web import panels, pdf

panels.report_page("Care pathways")
panels.panel("pathways", title="Moves between levels of care along each client's path",
         empty="No care paths match these filters.",
         chart=lambda df: charts.sankey(df, "source", "target", "transitions"))
pdf.pdf_export()
