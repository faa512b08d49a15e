"""BT-H: Brovey transform with haze correction (toolbox ``BT-H/BroveyRegHazeMin.m``, Lolli 2017)."""
from __future__ import annotations

import numpy as np
import torch

from ..fusion import register
from ._common import lp_filter_gauss, mean2, regress_global, std2, upsample

#: haze fractions of the 1st percentile for B, G, R, NIR (BroveyRegHazeMin.m, 4-band case)
HAZE_FRACTIONS_4 = (0.95, 0.45, 0.40, 0.05)


def haze(lms: torch.Tensor) -> torch.Tensor:
    """Per-band haze ``L`` ``(B, C, 1, 1)``: for 4 bands (B, G, R, NIR) fractions of each band's
    1st percentile (MATLAB ``prctile``, i.e. numpy's 'hazen' method); otherwise each band's min."""
    b, c = lms.shape[:2]
    if c == 4:
        vals = lms.flatten(-2).cpu().numpy()
        p1 = np.percentile(vals, 1, axis=-1, method="hazen")  # (B, C)
        h = torch.as_tensor(p1 * np.array(HAZE_FRACTIONS_4), dtype=lms.dtype, device=lms.device)
    else:
        h = lms.flatten(-2).amin(-1)
    return h.view(b, c, 1, 1)


@register("bt-h", "Brovey transform with haze correction and regression-based intensity (Lolli 2017)")
def bt_h(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    L = haze(lms)
    pan_lr = lp_filter_gauss(pan, ratio)
    alpha = regress_global(lms, pan_lr)                               # (B, C)
    intensity = ((lms - L) * alpha[..., None, None]).sum(1, keepdim=True)
    pan_eq = (pan - mean2(pan_lr)) * (std2(intensity) / std2(pan_lr)) + mean2(intensity)
    ms_l = (lms - L).clamp(min=0)
    return ms_l * (pan_eq / (intensity + torch.finfo(torch.float64).eps)) + L
