"""How do clients move between levels of care?"""

from outcomes.web.report import report_page

with report_page("pathways", "Care pathways") as page:
    page.panel("pathways")
