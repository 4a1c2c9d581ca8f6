"""Load new extracts: upload the four files, see the validation report, publish when valid (admins only)."""

import streamlit as st

from outcomes.web import context, database, gate, page, uploads

page.page("Data")
gate.require("manage_data")
facts = database.info(context.current().version)
st.caption(
    f"Serving data through **{facts['data_through']:%d %b %Y}**, loaded {facts['loaded_at']:%d %b %Y %H:%M} "
    f"from `{facts['source']}`. The files must follow the data contract (`docs/data-contract.md`)."
)
files = st.file_uploader(
    "Extracts: clients, enrollments, attendance and transitions (.csv or .parquet)",
    type=["csv", "parquet"],
    accept_multiple_files=True,
    key="uploads",
    max_upload_size=uploads.upload_limit_mb(),
)
as_of = st.date_input(
    "Data through (empty: the latest date in the files)", value=None, key="as_of", format="YYYY-MM-DD"
)
if st.button("Validate and publish", type="primary", disabled=not files, key="publish"):
    uploads.publish_uploads(files, as_of)
