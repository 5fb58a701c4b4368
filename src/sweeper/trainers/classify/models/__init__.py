"""Classification models by name (catalog.py is torch-free; build.py constructs them)."""
