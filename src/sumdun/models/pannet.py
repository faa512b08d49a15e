"""PanNet (Yang, Fu, Hu, Huang, Ding, Paisley, "PanNet: a deep network architecture for
pan-sharpening", ICCV 2017): a ResNet on high-pass inputs, whose output is added to the expanded
MS (spectral preservation through the skip, spatial detail from the high-pass domain).

High-pass = image minus its 5 x 5 box mean (on the MS at its own scale and on the PAN); the
MS high-pass is expanded by a learned transposed convolution (8 x 8, stride 4, as the DLPan
toolbox). ``[up(hp(ms)), hp(pan)]`` -> conv 3x3, 32, ReLU -> 4 residual blocks (32) -> conv 3x3,
C; output = lms + that. 8 bands: 83 k parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._baseline import Baseline, BaselineConfig, ResBlock

__all__ = ["PanNetConfig", "PanNet", "high_pass"]


def high_pass(x: torch.Tensor, size: int = 5) -> torch.Tensor:
    """``x`` minus its ``size`` x ``size`` box mean (replicate-padded)."""
    p = size // 2
    return x - F.avg_pool2d(F.pad(x, (p, p, p, p), mode="replicate"), size, stride=1)


@dataclass
class PanNetConfig(BaselineConfig):
    width: int = 32
    blocks: int = 4


class PanNet(Baseline):
    def __init__(self, cfg: PanNetConfig):
        super().__init__(cfg)
        c, w, r = cfg.bands, cfg.width, cfg.ratio
        self.up = nn.ConvTranspose2d(c, c, 2 * r, stride=r, padding=r // 2)
        self.head = nn.Sequential(nn.Conv2d(c + 1, w, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[ResBlock(w) for _ in range(cfg.blocks)])
        self.tail = nn.Conv2d(w, c, 3, padding=1)

    def fuse(self, lms, ms, pan, text, prompt_drop):
        x = torch.cat([self.up(high_pass(ms)), high_pass(pan)], 1)
        return lms + self.tail(self.body(self.head(x)))
