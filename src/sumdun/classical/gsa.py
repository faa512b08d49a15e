"""GSA and AWLP (toolbox ``GS/GSA.m``, ``MRA/AWLP.m``; Aiazzi 2007, Otazu 2005 / Vivone 2021)."""
from __future__ import annotations

import torch

from ..degrade import imresize
from ..fusion import register
from ._common import mean2, regress_global, std2, upsample
from .wavelet import lp_filter_plus_dec, starck_murtagh_lowpass


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


@register("awlp", "Additive wavelet luminance proportional, Starck-Murtagh details (Otazu 2005)")
def awlp(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    ratio_img = lms / (lms.mean(1, keepdim=True) + torch.finfo(torch.float64).eps)
    pan_lr = imresize(imresize(pan, 1.0 / ratio), float(ratio))
    # the toolbox equalises PAN to each band (gain a_k, offset) and takes each band's details;
    # the low-pass is linear with unit DC gain, so details_k = a_k (PAN - LP(PAN)): one low-pass
    gain = std2(lms) / std2(pan_lr)                                          # (B, C, 1, 1)
    details = gain * (pan - starck_murtagh_lowpass(pan, ratio))
    return details * ratio_img + lms
