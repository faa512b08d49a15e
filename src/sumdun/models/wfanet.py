"""WFANet (Huang, Jin, Deng, Vivone, Chanussot et al., "Wavelet-assisted multi-frequency
attention network for pansharpening", AAAI 2025), rebuilt from the paper's description: MS and
PAN features are split by a Haar wavelet transform, attention runs per frequency with queries
from the MS and keys/values from the PAN, and the inverse transform brings the fused features
back.

lms, pan -> conv 3x3 to ``width`` each -> ``stages`` x [Haar DWT of both; for the low band
(LL) and the high bands (LH, HL, HH) separately, channel ("transposed") multi-head cross
attention (Restormer's MDTA, queries from MS, keys and values from PAN) and a gated feed-forward;
inverse DWT; residual] -> conv 3x3 -> C, added to lms. Layer sizes are chosen so the count
matches the published one (0.507 M parameters for 4 bands, 0.522 M for 8; here 0.539 M / 0.541 M).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._baseline import Baseline, BaselineConfig
from .wavelets import haar_dwt, haar_idwt

__all__ = ["WFANetConfig", "WFANet"]


class _Norm(nn.Module):
    """LayerNorm over channels of ``(B, d, H, W)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)

    def forward(self, x):
        return self.norm(x)


class CrossChannelAttention(nn.Module):
    """Channel attention (``heads`` groups): ``softmax(q k^T * t) v`` over the ``d / heads``
    channels of each head, q from ``x``, k and v from ``y`` (3x3 depthwise after 1x1)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.q = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, 3, padding=1, groups=dim))
        self.kv = nn.Sequential(nn.Conv2d(dim, 2 * dim, 1),
                                nn.Conv2d(2 * dim, 2 * dim, 3, padding=1, groups=2 * dim))
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, x, y):
        b, d, h, w = x.shape
        q = self.q(x).view(b, self.heads, d // self.heads, h * w)
        k, v = self.kv(y).view(b, 2, self.heads, d // self.heads, h * w).unbind(1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(-1)
        return self.out((attn @ v).view(b, d, h, w))


class GatedFeedForward(nn.Module):
    def __init__(self, dim: int, expansion: float = 2.0):
        super().__init__()
        hidden = int(dim * expansion)
        self.proj_in = nn.Conv2d(dim, 2 * hidden, 1)
        self.dw = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden)
        self.proj_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        a, g = self.dw(self.proj_in(x)).chunk(2, 1)
        return self.proj_out(F.gelu(g) * a)


class FrequencyAttention(nn.Module):
    """Cross attention plus feed-forward for one frequency group (pre-norm residuals)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_x, self.norm_y, self.norm_f = _Norm(dim), _Norm(dim), _Norm(dim)
        self.attn = CrossChannelAttention(dim, heads)
        self.ffn = GatedFeedForward(dim)

    def forward(self, x, y):
        x = x + self.attn(self.norm_x(x), self.norm_y(y))
        return x + self.ffn(self.norm_f(x))


class WaveletStage(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.low = FrequencyAttention(dim, heads)
        self.high = FrequencyAttention(3 * dim, heads)
        self.mix = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, ms_f, pan_f):
        a, p = haar_dwt(ms_f), haar_dwt(pan_f)                          # (B, 4, d, h, w)
        b, _, d, h, w = a.shape
        low = self.low(a[:, 0], p[:, 0])
        high = self.high(a[:, 1:].reshape(b, 3 * d, h, w), p[:, 1:].reshape(b, 3 * d, h, w))
        fused = torch.cat([low[:, None], high.view(b, 3, d, h, w)], 1)
        return ms_f + self.mix(haar_idwt(fused))


@dataclass
class WFANetConfig(BaselineConfig):
    width: int = 32
    stages: int = 4
    heads: int = 4


class WFANet(Baseline):
    multiple = 2

    def __init__(self, cfg: WFANetConfig):
        super().__init__(cfg)
        c, w = cfg.bands, cfg.width
        self.ms_in = nn.Conv2d(c, w, 3, padding=1)
        self.pan_in = nn.Conv2d(1, w, 3, padding=1)
        self.pan_refine = nn.ModuleList(nn.Conv2d(w, w, 3, padding=1) for _ in range(cfg.stages))
        self.stages = nn.ModuleList(WaveletStage(w, cfg.heads) for _ in range(cfg.stages))
        self.out = nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(w, c, 3, padding=1))

    def fuse(self, lms, ms, pan, text, prompt_drop):
        f, p = self.ms_in(lms), self.pan_in(pan)
        for stage, refine in zip(self.stages, self.pan_refine):
            p = p + F.gelu(refine(p))
            f = stage(f, p)
        return lms + self.out(f)
