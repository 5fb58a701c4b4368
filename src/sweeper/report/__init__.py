"""Reading a sweep: run tables, summary tables, plots."""
