"""Building blocks of SUM-DUN on 3-D feature maps ``(B, d, C, H, W)`` (bands as depth)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm3d(nn.Module):
    """LayerNorm over the feature axis of ``(B, d, C, H, W)`` (Restormer's per-position norm)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        x = (x - mu) / torch.sqrt(var + 1e-5)
        return x * self.weight.view(1, -1, 1, 1, 1) + self.bias.view(1, -1, 1, 1, 1)


class Pointwise(nn.Module):
    """1x1x1 convolution of ``(B, d, C, H, W)``, run as a 1x1 conv2d on the ``(B, d, C*H, W)``
    view (PyTorch's CPU conv3d is several times slower for the same arithmetic)."""

    def __init__(self, din: int, dout: int):
        super().__init__()
        self.conv = nn.Conv2d(din, dout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, c, h, w = x.shape
        return self.conv(x.reshape(b, d, c * h, w)).reshape(b, -1, c, h, w)


class DepthwiseSpatial(nn.Module):
    """Depthwise (1,3,3) conv: a 3x3 kernel per feature channel, shared by the bands, run as a
    grouped conv2d over ``(B, d*C, H, W)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, 1, 3, 3))
        self.bias = nn.Parameter(torch.zeros(dim))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, c, h, w = x.shape
        y = F.conv2d(x.reshape(b, d * c, h, w), self.weight.repeat_interleave(c, 0),
                     self.bias.repeat_interleave(c), padding=1, groups=d * c)
        return y.reshape(b, d, c, h, w)


class DepthwiseSpectral(nn.Module):
    """Depthwise (3,1,1) conv along the band axis (zero padding at the first and last band):
    three shifted multiply-adds."""

    def __init__(self, dim: int):
        super().__init__()
        w = torch.zeros(dim, 3)
        w[:, 1] = 1.0
        self.weight = nn.Parameter(w + 0.01 * torch.randn(dim, 3))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.view(1, -1, 3, 1, 1, 1)
        y = x * w[:, :, 1] + self.bias.view(1, -1, 1, 1, 1)
        if x.shape[2] > 1:
            y = y.clone()
            y[:, :, 1:] += x[:, :, :-1] * w[:, :, 0]
            y[:, :, :-1] += x[:, :, 1:] * w[:, :, 2]
        return y


def dw_conv(dim: int, spectral: bool) -> nn.Module:
    """Depthwise 3x3 spatial conv, factorised with a 3-tap spectral conv when ``spectral``
    ((1,3,3) + (3,1,1): the 3-D design at a fraction of a full 3x3x3's cost)."""
    if not spectral:
        return DepthwiseSpatial(dim)
    return nn.Sequential(DepthwiseSpatial(dim), DepthwiseSpectral(dim))


class ChannelAttention(nn.Module):
    """Restormer's MDTA: attention across feature channels, map ``(d/h)^2`` per head, so its
    size depends neither on the band count nor on H, W."""

    def __init__(self, dim: int, heads: int, spectral: bool):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = Pointwise(dim, dim * 3)
        self.qkv_dw = dw_conv(dim * 3, spectral)
        self.proj = Pointwise(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, d // self.heads, c * h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(-1)
        return self.proj((attn @ v).reshape(b, d, c, h, w))


class GatedFeedForward(nn.Module):
    """Restormer's GDFN: expand, depthwise conv, GELU gate, project."""

    def __init__(self, dim: int, expansion: float, spectral: bool):
        super().__init__()
        hidden = max(int(dim * expansion), 2)
        self.inp = Pointwise(dim, hidden * 2)
        self.dw = dw_conv(hidden * 2, spectral)
        self.out = Pointwise(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dw(self.inp(x)).chunk(2, dim=1)
        return self.out(F.gelu(a) * b)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float, spectral: bool):
        super().__init__()
        self.n1, self.n2 = LayerNorm3d(dim), LayerNorm3d(dim)
        self.attn = ChannelAttention(dim, heads, spectral)
        self.ffn = GatedFeedForward(dim, expansion, spectral)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.n1(x))
        return x + self.ffn(self.n2(x))


class SPIM(nn.Module):
    """Semantic Prompt Integration Module: routes features by the prompt embedding.

    ``mode``: ``"channel"`` (FiLM scale/shift of feature channels from the embedding),
    ``"spatial"`` (per-position soft routing over ``experts`` depthwise branches, the router
    seeing the features and the embedding), ``"spatial-channel"`` (both, the paper's choice),
    ``"cross-attention"`` (queries from features, keys/values from ``tokens`` prompt tokens),
    ``"none"``. Every branch's output starts at zero (zero-initialised last layer), so an
    untrained SPIM is the identity and conditioning is learnt from there.
    """

    MODES = ("channel", "spatial", "spatial-channel", "cross-attention", "none")

    def __init__(self, dim: int, text_dim: int, mode: str, experts: int = 3, tokens: int = 4,
                 spectral: bool = True):
        super().__init__()
        self.balance: torch.Tensor | None = None  # routing balance of the last training pass
        if mode not in self.MODES:
            raise ValueError(f"SPIM mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        if mode in ("channel", "spatial-channel"):
            self.film = nn.Linear(text_dim, 2 * dim)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        if mode in ("spatial", "spatial-channel"):
            self.route_text = nn.Linear(text_dim, dim)
            self.router = Pointwise(dim, experts)
            self.experts = nn.ModuleList(dw_conv(dim, spectral) for _ in range(experts))
            self.route_out = Pointwise(dim, dim)
            nn.init.zeros_(self.route_out.conv.weight)
            nn.init.zeros_(self.route_out.conv.bias)
        if mode == "cross-attention":
            self.tokens = tokens
            self.kv = nn.Linear(text_dim, 2 * tokens * dim)
            self.q = Pointwise(dim, dim)
            self.out = Pointwise(dim, dim)
            nn.init.zeros_(self.out.conv.weight)
            nn.init.zeros_(self.out.conv.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, d, C, H, W)``, ``t`` ``(B, text_dim)``."""
        b, d = x.shape[:2]
        if self.mode in ("channel", "spatial-channel"):
            gamma, beta = self.film(t).chunk(2, dim=-1)
            x = x * (1 + gamma.view(b, d, 1, 1, 1)) + beta.view(b, d, 1, 1, 1)
        if self.mode in ("spatial", "spatial-channel"):
            routes = self.router(x + self.route_text(t).view(b, d, 1, 1, 1)).softmax(1)
            self.balance = None  # (also frees the last training pass's graph in eval)
            if self.training:  # load of each expert over the batch and positions
                load = routes.transpose(0, 1).flatten(1).mean(1)
                self.balance = load.numel() * (load * load).sum() - 1.0
            mixed = sum(routes[:, i:i + 1] * e(x) for i, e in enumerate(self.experts))
            x = x + self.route_out(mixed)
        if self.mode == "cross-attention":
            k, v = self.kv(t).view(b, 2, self.tokens, d).unbind(1)          # (B, T, d)
            q = self.q(x).flatten(2).transpose(1, 2)                       # (B, N, d)
            attn = (q @ k.transpose(1, 2) / d ** 0.5).softmax(-1)          # (B, N, T)
            x = x + self.out((attn @ v).transpose(1, 2).reshape(x.shape))
        return x


class Patchify(nn.Module):
    """``(B, cin, C, H, W) -> (B, dout, C, H/f, W/f)``: each f x f patch of every band becomes a
    feature vector (space-to-depth + 1x1 conv, i.e. a (1, f, f) conv with stride f), followed
    by a 3-tap spectral depthwise conv when ``spectral`` (3-D mixing across bands)."""

    def __init__(self, cin: int, dout: int, f: int, spectral: bool):
        super().__init__()
        self.f = f
        self.proj = Pointwise(cin * f * f, dout)
        self.spectral = DepthwiseSpectral(dout) if spectral else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ci, c, h, w = x.shape
        f = self.f
        if f > 1:
            x = F.pixel_unshuffle(x.reshape(b, ci * c, h, w), f)          # (B, ci*c*f*f, h/f, w/f)
            x = x.reshape(b, ci, c, f * f, h // f, w // f).transpose(2, 3)
            x = x.reshape(b, ci * f * f, c, h // f, w // f)
        return self.spectral(self.proj(x))


class Unpatchify(nn.Module):
    """Inverse layout of :class:`Patchify`: ``(B, din, C, h, w) -> (B, cout, C, f h, f w)``
    (1x1 conv to ``cout * f * f`` values per position, then depth-to-space)."""

    def __init__(self, din: int, cout: int, f: int):
        super().__init__()
        self.f, self.cout = f, cout
        self.proj = Pointwise(din, cout * f * f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        b, _, c, h, w = y.shape
        f, co = self.f, self.cout
        if f > 1:
            y = y.reshape(b, co, f * f, c, h, w).transpose(2, 3).reshape(b, co * c * f * f, h, w)
            y = F.pixel_shuffle(y, f).reshape(b, co, c, h * f, w * f)
        return y


def prompt_or_null(text_embeds: torch.Tensor | None, null: torch.Tensor, batch: int,
                   ref: torch.Tensor, dropout: float, training: bool,
                   prompt_drop: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, D)`` text embeddings on ``ref``'s device and dtype: the learned ``null`` one when
    there is no prompt, and in training for the samples ``prompt_drop`` marks (``(B,)`` bool;
    drawn with probability ``dropout`` when None)."""
    if text_embeds is None:
        return null.expand(batch, -1)
    e = text_embeds.to(ref)
    if training and dropout > 0:
        drop = (torch.rand(batch, 1, device=ref.device) < dropout if prompt_drop is None
                else prompt_drop.view(batch, 1).to(ref.device))
        e = torch.where(drop, null.expand(batch, -1), e)
    return e


def mean_gain(ms: torch.Tensor, level: float) -> torch.Tensor:
    """``(B, 1, 1, 1)``: each pair's MS mean (over bands and pixels, no gradient) divided by
    ``level``; dividing MS and PAN by it brings the MS mean to ``level`` (``input_norm="mean"``)."""
    mean = ms.detach().flatten(1).mean(1).clamp(min=torch.finfo(ms.dtype).tiny)
    return (mean / level).view(-1, 1, 1, 1)
