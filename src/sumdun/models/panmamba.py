"""Pan-Mamba (He, Cao, Yan, Jiang, Liu, Zhang, Zhou, "Pan-Mamba: effective pan-sharpening with
state space model", Information Fusion 2025): Mamba blocks on MS and PAN token sequences,
channel-swapping Mamba (half of the channels exchanged between the modalities before each
scan) and a cross-modal Mamba in which the PAN steers the MS scan.

lms, pan -> conv 3x3 to ``width`` -> tokens of ``patch`` x ``patch`` pixels -> ``single``
Mamba blocks per modality -> ``swaps`` channel-swapping Mamba blocks -> cross-modal Mamba
(scan input from the MS tokens, ``delta``, ``B``, ``C`` from the PAN tokens) -> pixels
(depth-to-space) -> conv 3x3, ReLU, conv 3x3 to C, added to lms. Mambas are bidirectional,
with the pure-PyTorch chunked scan of :mod:`sumdun.models.mamba`. Design decision: upstream
scans one token per PAN pixel; on this 2-core CPU that costs 5 s per block and batch, so the
tokens are 4 x 4 PAN pixels (``patch=4``; ``patch=1`` is upstream's), and one single-modality
block per branch: 0.225 M parameters for 8 bands, half of upstream's 0.478 M (``single=2``,
``tokens=64`` give 0.34 M at twice the cost per step).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._baseline import Baseline, BaselineConfig
from .mamba import Mamba

__all__ = ["PanMambaConfig", "PanMamba", "CrossMamba", "Tokens"]


class Tokens(nn.Module):
    """``(B, d, H, W)`` <-> ``(B, H/p * W/p, d_tok)``: a stride-p conv in, a 1x1 conv and
    depth-to-space out."""

    def __init__(self, width: int, tokens: int, patch: int, out: bool = True):
        super().__init__()
        self.patch = patch
        self.embed = nn.Conv2d(width, tokens, patch, stride=patch)
        # only for the branch whose tokens become pixels again
        self.unembed = nn.Conv2d(tokens, width * patch * patch, 1) if out else None

    def to_tokens(self, x):
        y = self.embed(x)
        return y.flatten(2).transpose(1, 2), y.shape[-2:]

    def to_image(self, t, hw):
        y = t.transpose(1, 2).reshape(t.shape[0], -1, *hw)
        return F.pixel_shuffle(self.unembed(y), self.patch)


class MambaLayer(nn.Module):
    """Pre-norm residual Mamba."""

    def __init__(self, dim: int, d_state: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mamba = Mamba(dim, d_state=d_state)

    def forward(self, x):
        return x + self.mamba(self.norm(x))


class CrossMamba(Mamba):
    """A Mamba whose selection (``delta``, ``B``, ``C``) comes from a second sequence ``y``
    (the PAN) while the scanned values come from ``x`` (the MS)."""

    def __init__(self, dim: int, d_state: int):
        super().__init__(dim, d_state=d_state)
        self.norm_x, self.norm_y = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.y_proj = nn.Linear(dim, self.inner, bias=False)

    def forward(self, x, y):
        u, z = self.in_proj(self.norm_x(x)).chunk(2, -1)
        v = self.y_proj(self.norm_y(y))
        out = self._ssm(u, v) + self._ssm(u.flip(1), v.flip(1)).flip(1)
        return x + self.out_proj(out * F.silu(z))


@dataclass
class PanMambaConfig(BaselineConfig):
    width: int = 32
    tokens: int = 48
    patch: int = 4
    d_state: int = 8
    single: int = 1
    swaps: int = 2


class PanMamba(Baseline):
    def __init__(self, cfg: PanMambaConfig):
        super().__init__(cfg)
        self.multiple = cfg.patch
        c, w, t = cfg.bands, cfg.width, cfg.tokens
        self.ms_in = nn.Conv2d(c, w, 3, padding=1)
        self.pan_in = nn.Conv2d(1, w, 3, padding=1)
        self.ms_tok = Tokens(w, t, cfg.patch)
        self.pan_tok = Tokens(w, t, cfg.patch, out=False)
        self.ms_single = nn.Sequential(*[MambaLayer(t, cfg.d_state) for _ in range(cfg.single)])
        self.pan_single = nn.Sequential(*[MambaLayer(t, cfg.d_state) for _ in range(cfg.single)])
        self.ms_swap = nn.ModuleList(MambaLayer(t, cfg.d_state) for _ in range(cfg.swaps))
        self.pan_swap = nn.ModuleList(MambaLayer(t, cfg.d_state) for _ in range(cfg.swaps))
        self.cross = CrossMamba(t, cfg.d_state)
        self.refine = nn.Sequential(nn.Conv2d(2 * w, w, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(w, c, 3, padding=1))

    def fuse(self, lms, ms, pan, text, prompt_drop):
        f_ms, f_pan = self.ms_in(lms), self.pan_in(pan)
        a, hw = self.ms_tok.to_tokens(f_ms)
        p, _ = self.pan_tok.to_tokens(f_pan)
        a, p = self.ms_single(a), self.pan_single(p)
        half = a.shape[-1] // 2
        for m_ms, m_pan in zip(self.ms_swap, self.pan_swap):  # exchange half the channels
            a, p = torch.cat([p[..., :half], a[..., half:]], -1), \
                torch.cat([a[..., :half], p[..., half:]], -1)
            a, p = m_ms(a), m_pan(p)
        a = self.cross(a, p)
        f = self.ms_tok.to_image(a, hw) + f_ms
        return lms + self.refine(torch.cat([f, f_pan], 1))
