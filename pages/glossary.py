"""Glossary: every KPI's single definition, searchable."""
from __future__ import annotations

import streamlit as st

from kpicore.display import plain
from kpicore.glossary import entries, unguarded
from kpicore.tree import tree_chart
from pages import common, widgets

ctx = common.context()
widgets.page_header(ctx, "Glossary")
st.markdown("One definition per KPI: the same words, formula and target wherever the number appears.")
with st.expander("KPI tree: how team KPIs feed the customer outcomes", expanded=True, icon=":material/account_tree:"):
    st.caption("Solid lines: a KPI drives another. Dashed purple: a counterweight guards a KPI that can be gamed. "
               "Colours: status in the period shown. Click a KPI to open it on its team page.")
    statuses = {} if ctx.empty else widgets.kpi_statuses(ctx.scorecard())
    links = common.kpi_links(ctx)
    common.chart(ctx, "kpi-tree", lambda: tree_chart(ctx.catalog, statuses, links, width=800), width="content")
gaps = [k for k in ctx.catalog.kpis if unguarded(k)]
if gaps:
    st.warning("These KPIs can be gamed (volume or speed) but no KPI guards them: "
               f"{', '.join(k.label for k in gaps)}. Give each a counterweight in the catalog.",
               icon=":material/gpp_maybe:")
query = st.text_input("Search", value=st.query_params.get("q", ""), placeholder="e.g. churn, MQL, Lösungszeit",
                      key=f"search-{st.query_params.get('q', '')}")
if query != st.query_params.get("q", ""):
    if query:
        st.query_params["q"] = query
    else:
        del st.query_params["q"]
found = entries(ctx.catalog, query)
if not found:
    st.info(f"No KPI matches '{plain(query)}'. Try a shorter word, another language, or clear the search.")
st.caption(f"{len(found)} of {len(ctx.catalog.kpis)} definitions")
for entry in found:
    kpi = entry.kpi
    with st.container(border=True, key=f"glossary-{kpi.id}"):
        st.markdown(f"#### {kpi.label}  \n`{kpi.id}` · {entry.owner}")
        if unguarded(kpi):
            st.markdown(":orange-badge[:material/gpp_maybe: can be gamed, no counterweight]")
        st.markdown(kpi.description)
        st.markdown(f"**Formula:** {entry.formula}")
        facts = [f"**Unit:** {kpi.unit.value}"]
        if kpi.direction is not None:
            facts.append(f"**Good direction:** {'up' if kpi.direction.value == 'up' else 'down'}")
        facts += [f"**Target:** {entry.target}", f"**Bands:** {entry.bands}"]
        st.markdown(" · ".join(facts))
        for rule in entry.rules:
            st.markdown(f"**Judged:** {rule}")
        if not kpi.is_measure:
            st.markdown(widgets.relations(ctx.catalog, kpi))
        if kpi.aliases:
            st.markdown(f"**Also called:** {', '.join(kpi.aliases)}")
