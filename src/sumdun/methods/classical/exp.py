"""EXP: the MS expanded to the PAN grid with the toolbox's 23-tap interpolator (no PAN used)."""
from __future__ import annotations

import torch

from ...degrade import interp23tap
from ..base import register


@register("exp", "MS upsampled with the 23-tap polynomial interpolator (interp23tap); no PAN detail",
          float32=True)
def exp(ms: torch.Tensor, pan: torch.Tensor, sensor, ratio: int) -> torch.Tensor:
    return interp23tap(ms, ratio)
