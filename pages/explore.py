"""Every catalog query with its definition, SQL, parameters, result, chart and downloads; and ad-hoc SQL."""

import streamlit as st

from outcomes import ui

ui.page("Explore")
adhoc = ui.current_user().can("adhoc_sql")  # analysts and admins with every site; others never see the tab
catalog_tab, *sql_tab = st.tabs(["Catalog", "Ad-hoc SQL"] if adhoc else ["Catalog"])
with catalog_tab:
    query = ui.explore_pick()
    if query is None:
        ui.catalog_overview()
    else:
        ui.explore_query(query, ui.explore_params(query))
for tab in sql_tab:
    with tab:
        ui.adhoc_panel()
