"""Turning suppressed results into charts, display tables and files (CSV, Excel, Parquet, PDF)."""
