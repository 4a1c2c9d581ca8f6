"""Every catalog query with its definition, SQL, parameters, result, chart and downloads; and ad-hoc SQL."""

import streamlit as st

from outcomes.web import adhoc, auth, explore, page

page.page("Explore")
can_query = auth.current_user().can("adhoc_sql")  # analysts and admins with every site; others never see the tab
catalog_tab, *sql_tab = st.tabs(["Catalog", "Ad-hoc SQL"] if can_query else ["Catalog"])
with catalog_tab:
    query = explore.explore_pick()
    if query is None:
        explore.catalog_overview()
    else:
        explore.explore_query(query, explore.explore_params(query))
for tab in sql_tab:
    with tab:
        adhoc.adhoc_panel()
