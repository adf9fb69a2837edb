"""The customer journey: a lead cohort from lead to promoter, the team that owns each step, and the hand-offs."""
from __future__ import annotations

import streamlit as st

from kpicore.charts import funnel_chart
from kpicore.journey import Step, handoffs
from kpicore.scorecard import kpi_result
from kpicore.texts import NO_LEADS
from pages import common, widgets

ctx = common.context()
widgets.page_header(ctx, "Journey")
if not ctx.tables["leads"].rows:
    widgets.outcome_strip(ctx, ctx.scorecard())
    st.info(NO_LEADS, icon=":material/route:")
    st.page_link(common.data_page(), label="Load a leads export on the Data page", icon=":material/upload_file:")
    st.stop()
found, churn = common.journey_of(ctx)
selected = found  # the cohorts up to the selected period, the young ones "so far" (the Cohorts table)
mature = found.latest_mature()
young = ctx.period.label
# a young cohort shows "0 so far": open on the latest mature one, and let the young one be asked for
if mature is not None and mature != ctx.period and not st.toggle(
        f"Show the {young} cohort as far as it got", key=f"young-cohort-{young}",
        help="Its leads have not had the time to become customers yet: the counts can still grow."):
    found, churn = common.journey_of(ctx, mature)
period = found.period.label
st.markdown(f"The leads created in **{period}**, followed from the first contact to a customer who stays and "
            "recommends us. Each step is owned by one team; the journey does not end at the sale.")
if found.period != ctx.period:
    settle = ctx.catalog.journey.settle(Step.CUSTOMER.value)
    st.caption(f":material/hourglass_top: The {young} leads have not had their {settle} days to become "
               f"customers yet: this is {period}, the latest cohort that has.")
widgets.outcome_strip(ctx, ctx.scorecard())
early_days = ctx.catalog.journey.early_churn_days
owners = widgets.owner_labels(ctx)

st.subheader(f"Funnel of the {period} leads",
             help="Each step counts the cohort's leads that reached it by the data's last day, whenever that was. "
                  f"{found.cohort.step(Step.RETAINED).label}: still a customer that long after buying. "
                  "Promoter: answered 9 or 10 in an NPS survey after buying.")
common.chart(ctx, f"funnel-{period}", lambda: funnel_chart(found, owners))
st.dataframe(widgets.journey_steps(found, owners), hide_index=True, width="stretch",
             column_config={"Median days": st.column_config.Column(help=widgets.median_days_help())})
common.table_download(lambda: widgets.journey_steps(found, owners).data, f"journey-{period}", "journey-steps")
maturing = [f"**{s.label}**: {s.maturing_note}" for s in found.steps if s.maturing]
if maturing:
    st.caption(":material/hourglass_top: Still maturing, the counts can still grow:  \n" + "  \n".join(maturing))
for note in found.notes:
    st.caption(f":material/info: {note}")
st.caption(f"Data as of {found.as_of.isoformat()}.")

st.subheader("Cohorts", help="The same funnel for the leads of each of the last periods, newest first.")
st.dataframe(widgets.journey_cohorts(selected), hide_index=True, width="stretch", height="content")
common.table_download(lambda: widgets.journey_cohorts(selected).data, f"cohorts-{ctx.period.label}", "cohorts")
st.caption("Each step: how many leads of the cohort reached it · conversion from the previous step. "
           "'so far': the cohort has not had the time this step needs yet, so the count can still grow.")

st.subheader("Hand-offs", help="KPIs of the care after each hand-over between teams. They are catalog KPIs and "
                                "count in their owners' scores.")
kpis = handoffs(ctx.catalog)
if kpis:
    for column, (kpi, hand_over) in zip(st.columns(len(kpis)), kpis, strict=True):
        with column:
            widgets.metric(kpi_result(kpi, ctx.values, ctx.period, ctx.view.comparison,
                                      ctx.catalog.currency), ctx)
            st.markdown(hand_over)
else:
    st.info("The KPI catalog defines no hand-off KPIs.", icon=":material/info:")

st.subheader(f"Early churn of the customers won in {period}, by channel",
             help=f"Customers who started paying in {period} and left within {early_days} days, by the "
                  "marketing channel of the lead they came from.")
if churn:
    st.dataframe(widgets.early_churn_table(churn), hide_index=True, width="content")
    common.table_download(lambda: widgets.early_churn_table(churn), f"early-churn-{period}", "early-churn")
else:
    st.info(f"No customer was won in {period}.", icon=":material/info:")
if found.early_churn_maturing:
    st.caption(f":material/hourglass_top: Some of these customers have not had {early_days} days yet: "
               "the numbers can still grow.")
