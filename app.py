"""Outcomes dashboard: page config, navigation and the shared sidebar filters."""

import streamlit as st

from outcomes.web import context, gate, sidebar

st.set_page_config(page_title="Treatment outcomes", page_icon="📈", layout="wide")

run = context.begin()  # who is signed in and which database this run shows, read once
pages = [
    st.Page("pages/overview.py", title="Overview", url_path="home", default=True),
    # the default page is served at the root only: this hidden twin answers at /overview too
    st.Page("pages/overview.py", title="Overview", url_path="overview", visibility="hidden"),
    st.Page("pages/stepdown.py", title="Step-down", url_path="stepdown"),
    st.Page("pages/engagement.py", title="Engagement", url_path="engagement"),
    st.Page("pages/retention.py", title="Retention & outcomes", url_path="retention"),
    st.Page("pages/pathways.py", title="Pathways", url_path="pathways"),
    st.Page("pages/explore.py", title="Explore", url_path="explore"),
    st.Page(
        "pages/data.py",
        title="Data",
        url_path="data",
        visibility="visible" if run.user.can("manage_data") else "hidden",
    ),
]
nav = gate.navigation(pages)  # sign-in or "not authorised" instead when login is on
sidebar.draw(nav.url_path)
nav.run()
