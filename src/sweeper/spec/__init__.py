"""Experiment specs: load and validate (torch-free), compile to W&B sweep configs."""
