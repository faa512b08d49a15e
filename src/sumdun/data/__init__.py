"""Training data: reduced-resolution patch datasets built by Wald's protocol."""
from .build import build_dataset, split_rows, subset4

__all__ = ["build_dataset", "split_rows", "subset4"]
