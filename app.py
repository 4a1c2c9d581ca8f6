"""Outcomes dashboard: page config, navigation and the shared sidebar filters."""

import streamlit as st

from outcomes import ui

st.set_page_config(page_title="Treatment outcomes", page_icon="📈", layout="wide")

pages = [
    st.Page("pages/stepdown.py", title="Step-down", url_path="stepdown", default=True),
    st.Page("pages/engagement.py", title="Engagement", url_path="engagement"),
]
nav = st.navigation(pages)
ui.sidebar_filters()
nav.run()
