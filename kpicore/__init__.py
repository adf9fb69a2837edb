"""kpicore: customer-centric KPI scorecards over DuckDB (no Streamlit in here)."""
