"""AWFLN (Lu, Yang, Huang, Chen, Chi, Liu, Tu, "AWFLN: an adaptive weighted feature learning
network for pansharpening", IEEE TGRS 2023), rebuilt from the paper's description: a
detail-injection network whose feature blocks weigh receptive fields adaptively and whose
injection gains are learned per pixel and band.

``[pan - lms, lms]`` -> conv 3x3 -> ``blocks`` adaptive weighted feature learning blocks (three
3x3 branches with dilations 1, 2, 3, mixed by per-channel softmax weights from the block's
pooled features, selective-kernel style, then a 1x1 fusion and a residual) -> two heads:
details ``d`` and gains ``g = sigmoid(.)``; output ``lms + g * d``. Upstream's code is not
public here: layer sizes are chosen so that the count matches the published one (0.162 M
parameters for 4 bands, 0.174 M for 8; here 0.154 M and 0.159 M).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ._baseline import Baseline, BaselineConfig

__all__ = ["AWFLNConfig", "AWFLN"]


class AdaptiveWeightedBlock(nn.Module):
    def __init__(self, width: int, dilations=(1, 2, 3), reduction: int = 4):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=d, dilation=d), nn.LeakyReLU(0.2))
            for d in dilations)
        self.squeeze = nn.Sequential(nn.Linear(width, width // reduction), nn.ReLU(inplace=True),
                                     nn.Linear(width // reduction, width * len(dilations)))
        self.fuse = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([br(x) for br in self.branches], 1)      # (B, K, w, H, W)
        pooled = feats.sum(1).mean((-2, -1))                          # (B, w)
        weights = self.squeeze(pooled).view(x.shape[0], len(self.branches), -1).softmax(1)
        return x + self.fuse((feats * weights[..., None, None]).sum(1))


@dataclass
class AWFLNConfig(BaselineConfig):
    width: int = 32
    blocks: int = 5


class AWFLN(Baseline):
    def __init__(self, cfg: AWFLNConfig):
        super().__init__(cfg)
        c, w = cfg.bands, cfg.width
        self.head = nn.Sequential(nn.Conv2d(2 * c, w, 3, padding=1), nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*[AdaptiveWeightedBlock(w) for _ in range(cfg.blocks)])
        self.details = nn.Conv2d(w, c, 3, padding=1)
        self.gains = nn.Conv2d(w, c, 3, padding=1)

    def fuse(self, lms, ms, pan, text, prompt_drop):
        f = self.body(self.head(torch.cat([pan - lms, lms], 1)))
        return lms + torch.sigmoid(self.gains(f)) * self.details(f)
