"""Fusing a pair whose ratio divides the network's (a ratio-2 Sentinel-2 or Landsat pair with
ratio-4 weights) on a finer grid: the PAN is interpolated by ``k = model ratio / pair ratio``
so that the MS is ``model ratio`` coarser, the network fuses on that grid, and the result is
low-passed and decimated back to the PAN grid.

Both steps use the toolbox's 23-tap half-band filter (``interp23tap``'s dyadic step) centred on
the PAN samples: up-sampling keeps the PAN's samples at the even positions of the finer grid
(``up[..., 2i, 2j] == pan[..., i, j]``), so the pair's own alignment (MS pixel ``i`` at PAN
``2i + 1`` for ratio 2) becomes the network's (MS pixel ``i`` at ``4i + 2``), and decimation
takes the same positions after the half-band low-pass (unit gain at DC, so a constant image and
the PAN itself come back unchanged). Borders are reflected, not wrapped.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ...kernels import interp23tap_response


@lru_cache(maxsize=1)
def halfband() -> tuple[np.ndarray, int]:
    """``(h, reach)``: the 23-tap dyadic interpolation filter centred on the kept samples,
    ``h[reach + d]`` for ``|d| <= reach``; ``h[reach] == 1``, zero at the other even offsets,
    sum 2 (an interpolator's gain)."""
    u, reach = interp23tap_response(2)
    # interp23tap keeps sample i at 2i + 1: its response is centred on offset 1
    h = u[(np.arange(-reach, reach + 1) + 1) % len(u)]
    h.setflags(write=False)
    return h, reach


def _separable(x: torch.Tensor, taps: np.ndarray, reach: int) -> torch.Tensor:
    """``x`` ``(B, C, H, W)`` filtered by ``taps`` along rows and columns, reflected borders."""
    b, c, hh, ww = x.shape
    k = torch.tensor(taps, dtype=x.dtype, device=x.device)
    y = F.pad(x.reshape(b * c, 1, hh, ww), (reach, reach, reach, reach), mode="reflect")
    y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return y.view(b, c, hh, ww)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``, the input kept at the even positions."""
    h, reach = halfband()
    b, c, hh, ww = x.shape
    if min(hh, ww) <= reach // 2:
        raise ValueError(f"an image of {hh} x {ww} pixels is too small to interpolate (at "
                         f"least {reach // 2 + 1} a side)")
    z = x.new_zeros(b, c, 2 * hh, 2 * ww)
    z[..., ::2, ::2] = x
    return _separable(z, h, reach)


def decimate2(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, 2H, 2W)`` -> ``(B, C, H, W)``: half-band low-pass (unit DC gain), then the even
    positions (those :func:`upsample2` keeps)."""
    h, reach = halfband()
    return _separable(x, h / h.sum(), reach)[..., ::2, ::2]


def check_ratio(ratio: int, model_ratio: int) -> int:
    """The factor ``k = model_ratio / ratio`` (1 or a power of 2), or a clear error."""
    k = model_ratio // ratio
    if ratio <= 0 or ratio * k != model_ratio or k & (k - 1):
        raise ValueError(f"SUM-DUN's weights fuse ratio-{model_ratio} pairs, and pairs whose "
                         f"ratio divides it by a power of 2 (on a finer grid); ratio {ratio} "
                         "cannot be fused: use a classical method (--method mtf-glp-fs)")
    return k
