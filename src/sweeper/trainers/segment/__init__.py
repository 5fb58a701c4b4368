"""The `segment` trainer: binary lung segmentation on chest X-rays with smp models."""
