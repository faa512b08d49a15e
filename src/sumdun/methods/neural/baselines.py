"""The deep baselines in the fusion registry (filled in below)."""
