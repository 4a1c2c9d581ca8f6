"""A director page as a PDF: every chart, with the filters printed on each page."""

from __future__ import annotations

import streamlit as st

from outcomes.web.database import info, run_version
from outcomes.web.downloads import download
from outcomes.web.panels import draw_panels
from outcomes.web.sidebar import active_filters, filters_text


def pdf_export() -> None:
    """In the sidebar: make this page's charts into a PDF on request (with the filters on every page). Draws the
    page's panels first."""
    import hashlib

    from outcomes.present import pdf as export

    draw_panels()
    report = st.session_state.get("add_to_pdf") or {}
    items = report.get("charts") or []
    stamp = hashlib.sha1("|".join([report.get("title", ""), filters_text(), str(run_version())]
                                  + report.get("stamps", [])).encode()).hexdigest()
    with st.sidebar:
        st.divider()
        st.caption("This page as a PDF: every chart, with the filters printed on each page.")
        if st.button("Prepare PDF", key="pdf-prepare", disabled=not items, icon=":material/picture_as_pdf:"):
            try:
                with st.spinner("Drawing the charts…"):
                    data = export.pdf(report["title"], items, filters_text(), info(run_version())["data_through"])
            except Exception:  # the drawing browser failed; the page itself is fine
                import logging

                logging.getLogger(__name__).exception("PDF export failed")
                st.warning("The PDF could not be drawn just now. Please try again.")
            else:
                st.session_state["_pdf"] = (stamp, data)
        ready = st.session_state.get("_pdf")
        if ready and ready[0] == stamp:
            pdf_bytes = ready[1]
            name = report["title"].lower().replace(" ", "-").replace("&", "and")
            download("Download page as PDF", lambda: pdf_bytes, f"{name}.pdf", "application/pdf", key="pdf-download",
                     params={k: v for k, v in active_filters().items() if v is not None}, rows=len(items))
