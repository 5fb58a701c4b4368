"""Data sets as preprocessed tensors (catalog.py is torch-free; build.py loads them)."""
