"""A director page as a PDF: every chart, with the filters printed on each page."""

from __future__ import annotations

import hashlib
import logging

import streamlit as st

from outcomes.present import pdf as export
from outcomes.web import context
from outcomes.web.database import info
from outcomes.web.downloads import download
from outcomes.web.sidebar import filters_text


def button(title: str, charts: list[export.Chart]) -> None:
    """In the sidebar: make these charts into a PDF on request, then offer it until the page changes."""
    run = context.current()
    export.warm()  # the drawing browser comes up while the page is read, not when the button is pressed
    words = filters_text(run.filters)
    stamp = hashlib.sha1(
        "|".join([title, words, str(run.version)] + [c.title + c.stamp for c in charts]).encode()
    ).hexdigest()
    with st.sidebar:
        st.divider()
        st.caption("This page as a PDF: every chart, with the filters printed on each page.")
        if st.button("Prepare PDF", key="pdf-prepare", disabled=not charts, icon=":material/picture_as_pdf:"):
            try:
                with st.spinner("Drawing the charts…"):
                    data = export.pdf(title, charts, words, info(run.version)["data_through"])
            except Exception:  # the drawing browser failed; the page itself is fine
                logging.getLogger(__name__).exception("PDF export failed")
                st.warning("The PDF could not be drawn just now. Please try again.")
            else:
                st.session_state["_pdf"] = (stamp, data)
        ready = st.session_state.get("_pdf")
        if ready and ready[0] == stamp:
            pdf_bytes = ready[1]
            name = title.lower().replace(" ", "-").replace("&", "and")
            download(
                "Download page as PDF",
                lambda: pdf_bytes,
                f"{name}.pdf",
                "application/pdf",
                key="pdf-download",
                params={k: v for k, v in run.filters.items() if v is not None},
                rows=len(charts),
            )
