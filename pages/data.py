"""Load new extracts (upload the four files, or from the configured PostgreSQL schema), see the validation
report, publish when valid; the audit log's state and the refused loads (admins only)."""

import streamlit as st

from outcomes.web import context, data_admin, database, gate, page, uploads

page.page("Data")
gate.require("manage_data")
facts = database.info(context.current().version)
st.caption(
    f"Serving data through **{facts['data_through']:%d %b %Y}**, loaded {facts['loaded_at']:%d %b %Y %H:%M} "
    f"from `{facts['source']}`. The data must follow the data contract (`docs/data-contract.md`)."
)
as_of = st.date_input("Data through (empty: the latest date in the data)", value=None, key="as_of", format="YYYY-MM-DD")
files = st.file_uploader(
    "Extracts: clients, enrollments, attendance and transitions (.csv or .parquet)",
    type=["csv", "parquet"],
    accept_multiple_files=True,
    key="uploads",
    max_upload_size=uploads.upload_limit_mb(),
)
if st.button("Validate and publish", type="primary", disabled=not files, key="publish"):
    uploads.publish_uploads(files, as_of)
if url := uploads.postgres_url():
    st.subheader("PostgreSQL")
    st.caption(f"The configured source ([postgres] in secrets): `{url}`; the password comes from the server's libpq.")
    if st.button("Load from PostgreSQL", key="publish-postgres"):
        uploads.publish_postgres(url, as_of)
st.subheader("Audit log")
data_admin.audit_state()
st.subheader("Refused loads")
data_admin.refused_loads()
