"""BT-H: Brovey transform with haze correction (toolbox ``BT-H/BroveyRegHazeMin.m``, Lolli 2017).

One registered method, two implementations of the same steps: torch tensors (batched, any
device; :mod:`._brovey_torch`) and numpy arrays (:mod:`._brovey_numpy`, which never imports
torch, so ``sumdun fuse --method bt-h`` starts in a fraction of the time). Both reproduce the
toolbox; ``tests/test_classical.py`` checks each against its values and against each other.
"""
from __future__ import annotations

import numpy as np

from ..base import register

#: haze fractions of the 1st percentile for B, G, R, NIR (BroveyRegHazeMin.m, 4-band case)
HAZE_FRACTIONS_4 = (0.95, 0.45, 0.40, 0.05)


def haze_is_band_minimum(bands: int) -> bool:
    """Whether the haze is each band's minimum (any band count but 4), so ``lms - L >= 0``."""
    return bands != len(HAZE_FRACTIONS_4)


def mean_std(total, sum_sq, n: int):
    """Mean and sample std (N - 1, MATLAB ``std2``) from the sum and the sum of squares (numpy
    arrays or tensors)."""
    mean = total / n
    var = (sum_sq - n * mean * mean) / (n - 1)
    return mean, (var * (var > 0)) ** 0.5


@register("bt-h", "Brovey transform with haze correction and regression-based intensity (Lolli 2017)",
          float32=True, numpy=True)
def bt_h(ms, pan, sensor, ratio, rows: int = 32):
    """``BroveyRegHazeMin.m`` of ``ms (B, C, h, w)`` and ``pan (B, 1, H, W)``, torch tensors or
    numpy float arrays (the result is of the same kind). ``rows``: rows per strip of the final
    pass (cache-sized)."""
    if isinstance(ms, np.ndarray):
        from ._brovey_numpy import bt_h_numpy

        return bt_h_numpy(ms, pan, ratio, rows)
    from ._brovey_torch import bt_h_torch

    return bt_h_torch(ms, pan, ratio, rows)

