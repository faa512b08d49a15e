"""Per-band detail gain of a network fusion, calibrated on the scene itself at the reduced scale.

A network trained on some scenes can inject too much or too little PAN detail into the bands
of others (measured: the step-7 shipped weights over-injected into the coastal and blue bands
of the PAirMax Munich WorldView-3 scenes, high-pass 1.34 and 1.21 times the reference's).
Wald's scale invariance gives each scene its own check without a reference: reduce the pair
once more (generic MTF, the sensor's is not assumed), fuse it, and compare the fusion's detail
with the detail of the MS it should give back. Per band,

    g_hat = <hp(F_rr), hp(MS)> / <hp(F_rr), hp(F_rr)>          (least squares, F_rr: (C, h, w))
    g     = clip(1 + share * (g_hat - 1), 0.5, 1.5)
    out   = F + (g - 1) * hp(F)                                  (F: the fusion, (C, rh, rw))

with ``hp(x) = x - MTF_g(x)``, ``MTF_g`` the toolbox's 41-tap Gaussian at the generic Nyquist
gain 0.3 (renormalised to sum 1), replicate borders: the detail above the MS cut-off. ``share``
< 1 shrinks the estimate towards the network's own gain: the reduced pair has 1/ratio^2 of the
pixels and is one more blur away from the data, so its estimate is noisy (0.5 was chosen on the
dgsamples validation stripes; see the README). The output is no longer exactly consistent with
the MS (re-projecting it was measured to cost Q2n on 8-bit products). Same idea as the
classical methods' regression of injection gains at the reduced scale (BDSD, GSA), here on a
trained network's output: C numbers per scene, no training.
"""
from __future__ import annotations

import torch

#: the applied gain is kept in this range
LIMITS = (0.5, 1.5)
#: inputs with fewer MS pixels a side fuse without calibration (the reduced pair would be
#: under 8 MS pixels)
MIN_MS = 32

__all__ = ["LIMITS", "MIN_MS", "highpass", "estimate_detail_gain", "apply_detail_gain",
           "reduced_pair"]


def highpass(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """``x - MTF_g(x)`` for ``(B, C, H, W)``: the detail above the MS cut-off (generic gain).
    The kernel is renormalised to sum 1 (the toolbox's windowed one sums to 0.9987), so a
    constant image has no detail and a gain leaves a flat band as it is."""
    from ...degrade import mtf_filter
    from ...kernels import mtf_kernels

    k = mtf_kernels("generic", ratio, n_bands=1)
    return x - mtf_filter(x, k / k.sum())


def estimate_detail_gain(fused_rr: torch.Tensor, ms: torch.Tensor, share: float,
                         ratio: int = 4) -> torch.Tensor:
    """``(B, C)`` gains ``clip(1 + share (g_hat - 1), *LIMITS)``; ``fused_rr`` is the fusion of
    the reduced pair and ``ms`` the MS it should give back, both ``(B, C, h, w)``. A band whose
    fusion has no detail (high-pass energy under 1e-12 of the MS's) gets 1."""
    d = highpass(fused_rr.double(), ratio)
    t = highpass(ms.double(), ratio)
    num, den = (d * t).sum((-2, -1)), (d * d).sum((-2, -1))
    some = den > 1e-12 * (t * t).sum((-2, -1)) + torch.finfo(den.dtype).tiny  # not rounding
    g_hat = torch.where(some, num / den.clamp(min=torch.finfo(den.dtype).tiny), 1.0)
    return (1 + share * (g_hat - 1)).clamp(*LIMITS)


def apply_detail_gain(fused: torch.Tensor, gain: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """``fused + (gain - 1) * hp(fused)``: ``(B, C, H, W)`` with ``(B, C)`` gains."""
    g = gain.to(fused.dtype).view(*gain.shape, 1, 1)
    return fused + (g - 1) * highpass(fused, ratio)


def reduced_pair(ms: torch.Tensor, pan: torch.Tensor, ratio: int = 4):
    """``(ms_crop, ms_rr, pan_rr)``: the top-left whole-``ratio`` part of the MS ``(B, C, h, w)``
    and its Wald reduction with the generic MTF (and its PAN, bicubic as the toolbox)."""
    from ...degrade import wald

    h, w = ms.shape[-2] // ratio * ratio, ms.shape[-1] // ratio * ratio
    ms_c = ms[..., :h, :w]
    ms_rr, pan_rr = wald(ms_c, pan[..., :ratio * h, :ratio * w], "generic", ratio)
    return ms_c, ms_rr, pan_rr
