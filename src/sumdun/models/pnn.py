"""PNN (Masi, Cozzolino, Verdoliva, Scarpa, "Pansharpening by convolutional neural networks",
Remote Sensing 2016): three convolutions on the expanded MS stacked with the PAN.

``[lms, pan]`` -> conv 9x9, 64, ReLU -> conv 5x5, 32, ReLU -> conv 5x5, C. The published
network uses valid convolutions on 33 x 33 patches; here the convolutions are zero-padded
("same") so that a tile keeps its size, as in the later PNN implementations (DLPan toolbox).
The output is the image itself, not a residual, as published. 8 bands: 104 k parameters
(4 bands: 80 k).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ._baseline import Baseline, BaselineConfig

__all__ = ["PNNConfig", "PNN"]


@dataclass
class PNNConfig(BaselineConfig):
    widths: tuple = (64, 32)
    kernels: tuple = (9, 5, 5)


class PNN(Baseline):
    def __init__(self, cfg: PNNConfig):
        super().__init__(cfg)
        (w1, w2), (k1, k2, k3) = cfg.widths, cfg.kernels
        self.net = nn.Sequential(
            nn.Conv2d(cfg.bands + 1, w1, k1, padding=k1 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(w1, w2, k2, padding=k2 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(w2, cfg.bands, k3, padding=k3 // 2))

    def fuse(self, lms, ms, pan, text, prompt_drop):
        return self.net(torch.cat([lms, pan], 1))
