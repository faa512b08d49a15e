"""FusionNet (Deng, Vivone, Jin, Huang, Chanussot, "Detail injection-based deep convolutional
neural networks for pansharpening", IEEE TGRS 2021): a ResNet estimates the details to inject
from the difference between the PAN (repeated over the bands) and the expanded MS, in the
spirit of the classical detail-injection (CS/MRA) methods.

``pan - lms`` (C bands) -> conv 3x3, 32, ReLU -> 4 residual blocks (32) -> conv 3x3, C;
output = lms + that. 8 bands: 79 k parameters (DLPan toolbox sizes).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from ._baseline import Baseline, BaselineConfig, ResBlock

__all__ = ["FusionNetConfig", "FusionNet"]


@dataclass
class FusionNetConfig(BaselineConfig):
    width: int = 32
    blocks: int = 4


class FusionNet(Baseline):
    def __init__(self, cfg: FusionNetConfig):
        super().__init__(cfg)
        c, w = cfg.bands, cfg.width
        self.head = nn.Sequential(nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[ResBlock(w) for _ in range(cfg.blocks)])
        self.tail = nn.Conv2d(w, c, 3, padding=1)

    def fuse(self, lms, ms, pan, text, prompt_drop):
        return lms + self.tail(self.body(self.head(pan - lms)))
