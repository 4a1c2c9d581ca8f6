"""Every catalog query with its definition, SQL, parameters, result, chart and downloads; and ad-hoc SQL."""

import streamlit as st

from outcomes.web import adhoc, context, explore, page

page.page("Explore")
can_query = context.current().user.can("adhoc_sql")  # analysts and admins with every site; others never see it
catalog_tab, *sql_tab = st.tabs(["Catalog", "Ad-hoc SQL"] if can_query else ["Catalog"])
with catalog_tab:
    query = explore.pick()
    if query is None:
        explore.index()
    else:
        explore.show(query, explore.params(query))
for tab in sql_tab:
    with tab:
        adhoc.adhoc_panel()
