"""How do clients move between levels of care?"""

from outcomes import charts, ui

ui.report_page("Care pathways")
ui.panel("pathways", title="Moves between levels of care along each client's path",
         empty="No care paths match these filters.",
         chart=lambda df: charts.sankey(df, "source", "target", "transitions"))
ui.pdf_export()
