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


def intensity_map(alpha, gram, lms_sums, haze, pan_lr_sum, pan_lr_sq, n: int, einsum):
    """The final pass's constants from float64 moments (numpy arrays ``(C,)``/``(C, C)`` or
    tensors ``(B, C)``/``(B, C, C)``; ``einsum`` is ``np.einsum`` or ``torch.einsum``):
    ``offset = sum_k alpha_k L_k``, and ``scale``, ``shift`` that match the low-passed PAN's mean
    and std to those of the intensity ``I = sum_k alpha_k (lms_k - L_k)``
    (``pan_eq = pan * scale + shift``). ``gram``: ``lms^T lms``; ``lms_sums``: per-band sums of
    ``lms``; ``haze``: ``L``; ``n``: pixels."""
    p_mean, p_std = mean_std(pan_lr_sum, pan_lr_sq, n)
    offset = (alpha * haze).sum(-1)
    a_sums = (alpha * lms_sums).sum(-1)
    i_sq = einsum("...k,...kl,...l->...", alpha, gram, alpha) - 2 * offset * a_sums \
        + n * offset ** 2
    i_mean, i_std = mean_std(a_sums - n * offset, i_sq, n)
    scale = i_std / p_std                                             # std2(I) / std2(pan_lr)
    return offset, scale, i_mean - p_mean * scale


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

