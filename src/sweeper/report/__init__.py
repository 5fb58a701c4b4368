"""Reading a sweep: run tables, summary tables, plots; showing it on W&B (a Report, `sync`)."""
