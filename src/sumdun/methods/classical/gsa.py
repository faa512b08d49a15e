"""GSA (toolbox ``GS/GSA.m``; Aiazzi 2007)."""
from __future__ import annotations

import torch

from ..base import register
from ._common import mean2, regress_global, upsample
from .wavelet import lp_filter_plus_dec


@register("gsa", "Gram-Schmidt adaptive: regression-based intensity, covariance gains (Aiazzi 2007)")
def gsa(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    lms0 = lms - mean2(lms)
    ms_lr0 = ms - mean2(ms)
    pan0 = pan - mean2(pan)
    pan_lr = lp_filter_plus_dec(pan0, ratio)
    ones = torch.ones_like(ms_lr0[:, :1])
    alpha = regress_global(torch.cat([ms_lr0, ones], 1), pan_lr)             # (B, C+1)
    intensity = (lms0 * alpha[:, :-1, None, None]).sum(1, keepdim=True) + alpha[:, -1, None, None, None]
    i0 = intensity - mean2(intensity)
    # g_k = cov(I0, MS0_k) / var(I0), both with N - 1 (MATLAB cov / var)
    n = i0.shape[-1] * i0.shape[-2]
    cov = ((i0 - mean2(i0)) * (lms0 - mean2(lms0))).sum((-2, -1), keepdim=True) / (n - 1)
    g = cov / i0.flatten(-2).var(-1)[..., None, None]
    fused = lms0 + g * (pan0 - i0)
    return fused - mean2(fused) + mean2(lms)
