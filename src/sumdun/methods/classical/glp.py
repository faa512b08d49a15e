"""MTF-GLP and MTF-GLP-HPM (toolbox ``GLP/MTF_GLP.m``, ``GLP/MTF_GLP_HPM.m``).

Both equalise the PAN to each MS band (mean and the std ratio to the 0.3-gain low-passed PAN),
take its low-pass version with the band's MTF filter, decimation (``imresize`` nearest) and the
23-tap expansion, and inject the difference: additively (MTF-GLP) or multiplicatively (HPM,
high-pass modulation).
"""
from __future__ import annotations

import torch

from ...degrade import decimate, interp23tap, mtf_filter, mtf_kernels
from ..base import register
from ._common import lp_filter_gauss, mean2, std2, upsample


def _equalised_pan_and_lowpass(lms, pan, sensor, ratio):
    pan_c = pan.expand_as(lms)
    pan_lp_gauss = lp_filter_gauss(pan, ratio)
    eq = (pan_c - mean2(pan)) * (std2(lms) / std2(pan_lp_gauss)) + mean2(lms)
    lp = mtf_filter(eq, mtf_kernels(sensor, ratio, n_bands=lms.shape[1]))
    return eq, interp23tap(decimate(lp, ratio), ratio)


@register("mtf-glp", "MTF-matched Generalized Laplacian Pyramid, additive injection (Aiazzi 2002/2006)")
def mtf_glp(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    eq, pan_lp = _equalised_pan_and_lowpass(lms, pan, sensor, ratio)
    return lms + eq - pan_lp


@register("mtf-glp-hpm", "MTF-GLP with high-pass modulation (multiplicative) injection (Aiazzi 2003)")
def mtf_glp_hpm(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    eq, pan_lp = _equalised_pan_and_lowpass(lms, pan, sensor, ratio)
    return lms * (eq / (pan_lp + torch.finfo(torch.float64).eps))


@register("mtf-glp-fs", "MTF-GLP with full-scale regression-based injection gains (Vivone 2018)")
def mtf_glp_fs(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    lp = mtf_filter(pan.expand_as(lms), mtf_kernels(sensor, ratio, n_bands=lms.shape[1]))
    pan_lp = interp23tap(decimate(lp, ratio), ratio)
    p = pan - mean2(pan)
    # gFS = cov(MS_k, PAN) / cov(PAN_LP_k, PAN), both over all pixels
    g = ((lms - mean2(lms)) * p).sum(dim=(-2, -1), keepdim=True) / \
        ((pan_lp - mean2(pan_lp)) * p).sum(dim=(-2, -1), keepdim=True)
    return lms + g * (pan - pan_lp)
