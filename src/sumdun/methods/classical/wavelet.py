"""The toolbox's Starck-Murtagh low-pass (``LPfilterPlusDec.m`` without/with decimation).

``ndwt2_working`` + ``indwt2_working`` with the filters ``h = sqrt(2) [1 4 6 4 1] / 16`` (analysis
and synthesis), ``ceil(log2(ratio))`` levels and every detail band zeroed reduce, along each
axis, to: ``levels`` times {symmetric extension by 4 samples (edge repeated), 'valid'
correlation with h} (each level grows the signal by 4: the non-decimated transform keeps the
full convolution), then ``levels`` times {'valid' correlation with h, / 2} (``indwt2``'s full
convolution, central part, and its ``/ 4`` per 2-D level). Filters are not dilated between
levels. Unit DC gain; the result is zero-phase.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...degrade import decimate

_H = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) * math.sqrt(2) / 16


def _sym_pad(x: torch.Tensor, dim: int, p: int) -> torch.Tensor:
    """MATLAB 'sym' extension by ``p`` on both ends of ``dim`` (edge sample repeated)."""
    n = x.shape[dim]
    if n < p:
        raise ValueError(f"the Starck-Murtagh low-pass needs at least {p} pixels per side, "
                         f"got {n}")
    idx = torch.cat([torch.arange(p - 1, -1, -1), torch.arange(n),
                     torch.arange(n - 1, n - 1 - p, -1)]).to(x.device)
    return x.index_select(dim, idx)


def _corr(x: torch.Tensor, dim: int) -> torch.Tensor:
    """'valid' correlation of ``(N, 1, H, W)`` with h along ``dim`` (-2 or -1)."""
    k = _H.to(x)
    w = k.view(1, 1, 5, 1) if dim == -2 else k.view(1, 1, 1, 5)
    return F.conv2d(x, w)


def starck_murtagh_lowpass(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """Low-pass ``(B, C, H, W)`` -> same shape (``indwt2_working`` of the approximation only)."""
    levels = math.ceil(math.log2(ratio))
    b, c, h, w = x.shape
    y = x.reshape(b * c, 1, h, w)
    for dim in (-2, -1):
        for _ in range(levels):
            y = _corr(_sym_pad(y, dim, 4), dim)
        for _ in range(levels):
            y = _corr(y, dim) / 2
    return y.reshape(b, c, h, w)


def lp_filter_plus_dec(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """``LPfilterPlusDec.m``: the low-pass above, then ``imresize(.., 1/ratio, 'nearest')``."""
    return decimate(starck_murtagh_lowpass(x, ratio), ratio)
