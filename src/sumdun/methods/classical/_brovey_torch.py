"""BT-H on torch tensors (batched, any device): the implementation behind
:func:`sumdun.methods.classical.brovey.bt_h` for tensors."""
from __future__ import annotations

import numpy as np
import torch

from ...degrade import inner_products64, interp23tap_adjoint, interp23tap_gram, sums64
from ._common import lp_filter_gauss, regress_global, solve_normal_equations, upsample
from .brovey import HAZE_FRACTIONS_4, haze_is_band_minimum, intensity_map


def haze(lms: torch.Tensor) -> torch.Tensor:
    """Per-band haze ``L`` ``(B, C, 1, 1)``: for 4 bands (B, G, R, NIR) fractions of each band's
    1st percentile (MATLAB ``prctile``, i.e. numpy's 'hazen' method); otherwise each band's min."""
    b, c = lms.shape[:2]
    if not haze_is_band_minimum(c):
        vals = lms.flatten(-2).cpu().numpy()
        p1 = np.percentile(vals, 1, axis=-1, method="hazen")  # (B, C)
        h = torch.as_tensor(p1 * np.array(HAZE_FRACTIONS_4), dtype=lms.dtype, device=lms.device)
    else:
        h = lms.flatten(-2).amin(-1)
    return h.view(b, c, 1, 1)


def bt_h_torch(ms: torch.Tensor, pan: torch.Tensor, ratio: int, rows: int = 32) -> torch.Tensor:
    """``BroveyRegHazeMin.m``, in one pass over the upsampled image after its statistics.

    The regression ``alpha = lms \\ pan_lr`` and the intensity's mean and std come from
    float64 moments computed at MS resolution (``lms^T lms`` from :func:`interp23tap_gram`,
    ``lms^T pan_lr`` through :func:`interp23tap_adjoint`), so float32 inputs give float32
    images with float64 statistics (within ~1e-6 of the range from the float64 result, except
    where the intensity is near 0 and the Brovey gain amplifies rounding).
    ``rows``: rows per strip of the final pass (cache-sized).
    """
    lms = upsample(ms, ratio)                                         # becomes the output
    L = haze(lms)                                                     # (B, C, 1, 1)
    above_haze = haze_is_band_minimum(ms.shape[1])                   # no clamp needed then
    pan_lr = lp_filter_gauss(pan, ratio)
    gram = interp23tap_gram(ms, ratio)                                # (B, C, C)
    adjoint = interp23tap_adjoint(pan_lr, ratio)                      # U^T pan_lr, MS grid
    rhs = inner_products64(ms, adjoint)                               # lms^T pan_lr (B, C, 1)
    alpha = solve_normal_equations(gram, rhs)
    if alpha is None:
        alpha = regress_global(lms.to(torch.float64), pan_lr.to(torch.float64))
    offset, scale, shift = intensity_map(
        alpha, gram, sums64(ms) * ratio * ratio, L[..., 0, 0].to(torch.float64),
        sums64(pan_lr)[:, 0], inner_products64(pan_lr, pan_lr)[:, 0, 0],
        pan.shape[-2] * pan.shape[-1], torch.einsum)
    eps = torch.finfo(torch.float64).eps
    dt = lms.dtype
    a_dt, off_dt = alpha.to(dt)[:, None, :], offset.to(dt).view(-1, 1, 1)
    scale, shift = scale.to(dt).view(-1, 1, 1), shift.to(dt).view(-1, 1, 1)
    for r in range(0, lms.shape[-2], rows):                           # strips stay in cache
        strip = lms[..., r:r + rows, :]
        h = strip.shape[-2]
        intensity = torch.matmul(a_dt, strip.flatten(-2)).view(-1, h, strip.shape[-1])
        intensity.sub_(off_dt).add_(eps)
        gain = pan[:, 0, r:r + rows].mul(scale).add_(shift)
        gain.div_(intensity)                                          # pan_eq / (I + eps)
        strip.sub_(L)
        if not above_haze:
            strip.clamp_(min=0)
        torch.addcmul(L, strip, gain[:, None], out=strip)             # (lms - L) gain + L
    return lms
