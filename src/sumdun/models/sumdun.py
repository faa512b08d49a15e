"""SUM-DUN: semantic-guided unified multi-scale deep unrolling network.

``X_0 = interp23tap(ms)``; each of K stages is a gradient-descent module (GDM) on the data terms
``ms = D(X)``, ``pan = R(X)`` followed by a semantic-guided proximal mapping network (SPMN):

    X~      = X_k - eta_k * ( D^T (D X_k - ms) + lambda_k * R^T (R X_k - pan) )
    X_{k+1} = X~ + SPMN_k(X~, pan, memory_{k-1}, skip, prompt)

Design decisions where the paper is silent (see also ``../shared/docs/SPEC-sumdun.md``):

* D is a learnable band-shared blur with the toolbox's decimation phase (outputs centred on
  PAN pixels ``ratio*i + ratio//2``), initialised from the sensor's MTF kernel (band mean,
  cropped to ``kernel`` taps and renormalised); ``degradation="3d"`` gives it a 3-tap spectral
  extent (side taps initialised at 0), ``"2d"`` none. D^T is a transposed convolution with its
  own weights, initialised like D (the adjoint at initialisation). R is a softmax over band
  weights predicted from the MS by a small 3-D conv and spatial pooling, so it exists for any
  band count. ``eta`` and ``lambda`` are learnable per stage (init 0.1 and 1).
* The SPMN lifts ``[X~, pan]`` to features ``(B, d_k, C, H/f_k, W/f_k)`` by "patchify"
  (each f x f patch of each band to a feature vector: a (1, f, f) conv with stride f, plus a
  3-tap spectral depthwise conv; ``f_k`` the stage's scale factor), runs Restormer-style 3-D
  transformer blocks (channel attention + gated feed-forward, depthwise convs factorised
  (1,3,3) + (3,1,1)) each followed by an SPIM, and returns a residual through "unpatchify"
  (1x1 conv + depth-to-space). Work happens at the stage's coarse scale; sub-pixel detail
  travels in the feature channels. On this 2-core CPU, stages at 1/2 PAN scale cost 3x more
  than the whole (4, 8, 16, 8, 4) schedule (``benchmarks/model.py``), hence ``sumdun_small``.
* Multi-scale (VLU-Net style U): stage scale factors such as (1, 2, 4, 2, 1) with widths
  (d, 2d, 4d, 2d, d); the previous stage's features are passed on (memory, strided conv down or
  trilinear up + 1x1x1 conv) and the stage with the same scale earlier in the U adds its
  features (skip). ``multiscale=False`` runs every stage at the finest scale and width ``d``.
* ``prox="2d"``: the proximal network folds bands into feature channels (2-D convolutions on a
  depth of 1); inputs are zero-padded to ``max_bands`` bands and the output cut back, which is
  how one set of 2-D weights takes 4- and 8-band images. ``prox="off"`` leaves only the GDMs.
* Prompts: ``text_embeds`` ``(B, text_dim)`` -> Linear + GELU -> every SPIM. Without it a learned
  null embedding is used; in training, ``prompt_dropout`` replaces embeddings by the null one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..degrade import interp23tap, mtf_kernels
from ..sensors import get_sensor
from .layers import (SPIM, DepthwiseSpatial, Patchify, Pointwise, TransformerBlock,
                     Unpatchify, mean_gain, prompt_or_null)

__all__ = ["SUMDUNConfig", "SUMDUN"]


#: the starting estimates :meth:`SUMDUN.initial` knows (``SUMDUNConfig.initial_estimate``)
INITIAL_ESTIMATES = ("exp", "bt-h", "mtf-glp-fs", "bt-h+mtf-glp-fs", "bt-h|mtf-glp-fs")


@dataclass
class SUMDUNConfig:
    """Every architectural choice, ablations included (paper tables 4 and 5)."""

    stages: int = 5
    dim: int = 12
    scales: tuple = (4, 8, 16, 8, 4)
    blocks: int = 1
    heads: int = 1
    expansion: float = 2.0
    degradation: str = "3d"          # "2d" | "3d"
    prox: str = "3d"                 # "2d" | "3d" | "off"
    multiscale: bool = True
    spim: str = "spatial-channel"    # "channel" | "spatial" | "spatial-channel" | "cross-attention" | "none"
    experts: int = 3
    text_dim: int = 384
    text_hidden: int = 64
    prompt_dropout: float = 0.1
    max_bands: int = 8
    ratio: int = 4
    sensor: str = "wv3"
    kernel: int = 13
    eta: float = 0.1
    lam: float = 1.0
    # X_0: "exp" (interp23tap, the paper), a classical fusion ("bt-h", "mtf-glp-fs"; generic
    # MTF gains, the sensor is not known), the mean of both ("bt-h+mtf-glp-fs") or a learned
    # per-pixel, per-band mix of both ("bt-h|mtf-glp-fs", :class:`StartGate`)
    initial_estimate: str = "exp"
    # "none": the inputs as given (divided by the data range by the caller); "mean": each pair
    # is divided by its MS mean over bands and pixels and multiplied by ``norm_level`` inside
    # forward(), and the output scaled back, so k * (ms, pan) fuses to exactly k * the fusion
    # (any bit depth, any data range, reflectance)
    input_norm: str = "none"
    norm_level: float = 0.15
    # back-projections of the output onto Wald's consistency property (the fused image,
    # MTF-filtered and decimated, gives back the MS): ``X += interp23tap(ms - D_g(X))``, D_g the
    # toolbox Gaussian MTF with the generic gain 0.3 (the sensor is not known); no parameters
    consistency: int = 0
    # at fusion only (not in forward(), not in training): the share of the per-band detail gain
    # estimated on the scene at the reduced scale that the fusion applies (0 off, 1 all of it;
    # :mod:`sumdun.methods.neural.detail_gain`)
    detail_gain: float = 0.0
    extra: dict = field(default_factory=dict)

    def validate(self) -> "SUMDUNConfig":
        if self.degradation not in ("2d", "3d"):
            raise ValueError(f"degradation must be '2d' or '3d', got {self.degradation!r}")
        if self.initial_estimate not in INITIAL_ESTIMATES:
            raise ValueError(f"initial_estimate must be one of {', '.join(INITIAL_ESTIMATES)}, "
                             f"got {self.initial_estimate!r}")
        if self.input_norm not in ("none", "mean"):
            raise ValueError(f"input_norm must be 'none' or 'mean', got {self.input_norm!r}")
        if not self.norm_level > 0:
            raise ValueError(f"norm_level must be positive, got {self.norm_level!r}")
        if not (isinstance(self.consistency, int) and self.consistency >= 0):
            raise ValueError(f"consistency must be a whole number >= 0 (back-projection "
                             f"steps), got {self.consistency!r}")
        if isinstance(self.detail_gain, bool) or not (
                isinstance(self.detail_gain, (int, float)) and 0 <= self.detail_gain <= 1):
            raise ValueError(f"detail_gain must be a number from 0 (off) to 1 (the whole gain "
                             f"estimated at the reduced scale), got {self.detail_gain!r}")
        if self.prox not in ("2d", "3d", "off"):
            raise ValueError(f"prox must be '2d', '3d' or 'off', got {self.prox!r}")
        if self.spim not in SPIM.MODES:
            raise ValueError(f"spim must be one of {SPIM.MODES}, got {self.spim!r}")
        if len(self.scales) != self.stages:
            raise ValueError(f"scales {self.scales} must give one factor per stage ({self.stages})")
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {self.kernel}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        return self

    def stage_scales(self) -> list[int]:
        return list(self.scales) if self.multiscale else [min(self.scales)] * self.stages

    def stage_dims(self) -> list[int]:
        base = min(self.stage_scales())
        return [self.dim * s // base for s in self.stage_scales()]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d


def _mtf_init(sensor: str, ratio: int, size: int) -> torch.Tensor:
    """Band-mean toolbox MTF kernel, centre-cropped to ``size`` taps, summing to 1."""
    k = mtf_kernels(get_sensor(sensor), ratio).mean(0)
    c, h = k.shape[0] // 2, size // 2
    k = k[c - h:c + h + 1, c - h:c + h + 1]
    return torch.from_numpy(np.ascontiguousarray(k / k.sum())).float()


class GDM(nn.Module):
    """Gradient step on ``||D X - ms||^2 / 2 + lambda ||R X - pan||^2 / 2``."""

    def __init__(self, cfg: SUMDUNConfig):
        super().__init__()
        self.ratio = cfg.ratio
        self.depth = 3 if cfg.degradation == "3d" else 1
        k2 = _mtf_init(cfg.sensor, cfg.ratio, cfg.kernel)
        w = torch.zeros(1, 1, self.depth, cfg.kernel, cfg.kernel)
        w[0, 0, self.depth // 2] = k2
        self.d_weight = nn.Parameter(w.clone())
        self.dt_weight = nn.Parameter(w.clone())
        # polyphase form of D^T: output phase phi, offset u -> kernel tap (or none)
        r, k, p, off = cfg.ratio, cfg.kernel, cfg.kernel // 2, cfg.ratio // 2
        c = [phi + p - off for phi in range(r)]
        span = max(max(abs(-((k - 1 - ci) // r)), abs(-(-ci // r))) for ci in c)  # |u| bound
        idx = torch.zeros(r, 2 * span + 1, dtype=torch.long)
        mask = torch.zeros(r, 2 * span + 1)
        for phi, ci in enumerate(c):
            for j, u in enumerate(range(-span, span + 1)):
                t = r * (-u) + ci
                if 0 <= t < k:
                    idx[phi, j], mask[phi, j] = t, 1.0
        self.register_buffer("_dt_idx", idx, persistent=False)
        self.register_buffer("_dt_mask", mask, persistent=False)
        self.eta = nn.Parameter(torch.tensor(float(cfg.eta)))
        self.lam = nn.Parameter(torch.tensor(float(cfg.lam)))

    def D(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H/r, W/r)``: blur, then keep pixels ``r*i + r//2``."""
        p, off, r = self.d_weight.shape[-1] // 2, self.ratio // 2, self.ratio
        x5 = F.pad(x, (p - off, p + off, p - off, p + off), mode="replicate").unsqueeze(1)
        y = F.conv3d(x5, self.d_weight, stride=(1, r, r), padding=(self.depth // 2, 0, 0))
        return y[:, 0]

    def Dt(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w) -> (B, C, r h, r w)``: the transposed operator (own weights).

        Mathematically ``conv_transpose3d(y, dt_weight, stride=(1, r, r))`` cropped to the
        decimation phase (see :meth:`dt_reference`), computed in polyphase form: one small
        convolution producing the ``r*r`` output phases as channels, then a pixel shuffle.
        (PyTorch's CPU transposed 3-D convolution is an order of magnitude slower.)
        """
        r, (b, c, h, w) = self.ratio, y.shape
        wt = self.dt_weight[0, 0].flip(0)                      # band axis: correlation form
        sub = wt[:, self._dt_idx[:, None, :, None], self._dt_idx[None, :, None, :]]
        sub = sub * self._dt_mask[:, None, :, None] * self._dt_mask[None, :, None, :]
        weight = sub.permute(1, 2, 0, 3, 4).reshape(r * r, 1, self.depth, *sub.shape[-2:])
        u = self._dt_idx.shape[1] // 2
        z = F.conv3d(y.unsqueeze(1), weight, padding=(self.depth // 2, u, u))  # (B, r*r, C, h, w)
        z = z.reshape(b, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2)
        return z.reshape(b, c, h * r, w * r)

    def dt_reference(self, y: torch.Tensor) -> torch.Tensor:
        """The same operator by ``conv_transpose3d`` (slow on CPU; for tests)."""
        p, off, r = self.dt_weight.shape[-1] // 2, self.ratio // 2, self.ratio
        h, w = y.shape[-2:]
        x = F.conv_transpose3d(y.unsqueeze(1), self.dt_weight, stride=(1, r, r),
                               padding=(self.depth // 2, 0, 0))
        return x[:, 0, :, p - off:p - off + r * h, p - off:p - off + r * w]

    def forward(self, x, ms, pan, band_w):
        """``band_w`` ``(B, C)``: R's weights (sum to 1)."""
        rx = (x * band_w[..., None, None]).sum(1, keepdim=True)
        grad = self.Dt(self.D(x) - ms) + self.lam * band_w[..., None, None] * (rx - pan)
        return x - self.eta * grad

    def fidelity(self, x, ms, pan, band_w) -> torch.Tensor:
        """The data term the step descends, per image ``(B,)``."""
        rx = (x * band_w[..., None, None]).sum(1, keepdim=True)
        return 0.5 * ((self.D(x) - ms) ** 2).flatten(1).sum(1) + \
            0.5 * self.lam * ((rx - pan) ** 2).flatten(1).sum(1)


class BandWeights(nn.Module):
    """R's band weights ``(B, C)`` predicted from the MS: 3-D conv, spatial mean, softmax."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.GELU(), nn.Conv3d(4, 1, 1))

    def forward(self, ms: torch.Tensor) -> torch.Tensor:
        return self.net(ms.unsqueeze(1))[:, 0].mean(dim=(-2, -1)).softmax(-1)


class SPMN(nn.Module):
    """One stage's proximal network at scale factor ``f`` and width ``dim``."""

    def __init__(self, cfg: SUMDUNConfig, dim: int, f: int):
        super().__init__()
        self.fold = cfg.prox == "2d"
        self.max_bands = cfg.max_bands
        self.f = f
        spectral = not self.fold
        cin = cfg.max_bands + 1 if self.fold else 2
        cout = cfg.max_bands if self.fold else 1
        self.lift = Patchify(cin, dim, f, spectral)
        self.local = DepthwiseSpatial(dim) if f == 1 else nn.Identity()
        self.unlift = Unpatchify(dim, cout, f)
        nn.init.zeros_(self.unlift.proj.conv.weight)  # an untrained stage adds nothing: the
        nn.init.zeros_(self.unlift.proj.conv.bias)    # network starts as EXP + gradient steps
        self.blocks = nn.ModuleList(TransformerBlock(dim, cfg.heads, cfg.expansion, spectral)
                                    for _ in range(cfg.blocks))
        self.spims = nn.ModuleList(SPIM(dim, cfg.text_hidden, cfg.spim, cfg.experts,
                                        spectral=spectral) for _ in range(cfg.blocks))

    def forward(self, x, pan, t, carry=None):
        b, c, h, w = x.shape
        if self.fold:
            xin = torch.cat([F.pad(x, (0, 0, 0, 0, 0, self.max_bands - c)), pan], 1).unsqueeze(2)
        else:
            xin = torch.stack([x, pan.expand_as(x)], 1)
        feat = self.local(self.lift(xin))
        if carry is not None:
            feat = feat + carry
        for block, spim in zip(self.blocks, self.spims):
            feat = spim(block(feat), t)
        out = self.unlift(feat)
        res = out[:, :c, 0] if self.fold else out[:, 0]
        return x + res, feat


class Resample(nn.Module):
    """Carry features from one stage's (scale, width) to another's: strided patchify down,
    bilinear-per-band (= trilinear with band scale 1) up + 1x1x1 conv."""

    def __init__(self, d_in: int, d_out: int, f_in: int, f_out: int, fold: bool):
        super().__init__()
        self.up = f_out < f_in
        self.a = max(f_in, f_out) // min(f_in, f_out)
        self.conv = Patchify(d_in, d_out, self.a, False) if f_out > f_in else Pointwise(d_in, d_out)

    def forward(self, x):
        if self.up:
            b, d, c, h, w = x.shape
            x = F.interpolate(x.reshape(b, d * c, h, w), scale_factor=self.a, mode="bilinear",
                              align_corners=False).reshape(b, d, c, h * self.a, w * self.a)
        return self.conv(x)


class StartGate(nn.Module):
    """A learned per-pixel, per-band mix of two starting estimates:
    ``g a + (1 - g) b`` with ``g = sigmoid(net([a_k, b_k, pan]))`` for each band k (the same
    small network for every band, so any band count). The last layer starts at zero, so an
    untrained gate is the mean of the two."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, hidden, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(hidden, 1, 3, padding=1))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, a: torch.Tensor, b: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` twice and ``(B, 1, H, W)`` -> ``(B, C, H, W)``."""
        n, c, h, w = a.shape
        x = torch.stack([a, b, pan.expand_as(a)], 2).view(n * c, 3, h, w)
        g = torch.sigmoid(self.net(x)).view(n, c, h, w)
        return b + g * (a - b)


class SUMDUN(nn.Module):
    """The unrolled network. ``forward(ms, pan, text_embeds=None) -> fused``.

    Inputs are scaled to [0, 1] (digital numbers / (2**bits - 1)): ``ms`` ``(B, C, h, w)``,
    ``pan`` ``(B, 1, r h, r w)``, ``text_embeds`` ``(B, text_dim)`` or None. Any band count
    works with the same weights (bands are the depth axis); a batch holds one band count.
    """

    def __init__(self, cfg: SUMDUNConfig | None = None, **overrides):
        super().__init__()
        cfg = replace(cfg or SUMDUNConfig(), **overrides).validate()
        self.cfg = cfg
        self.band_weights = BandWeights()
        if "|" in cfg.initial_estimate:
            self.start_gate = StartGate()
        self.gdms = nn.ModuleList(GDM(cfg) for _ in range(cfg.stages))
        self.uses_text = cfg.spim != "none" and cfg.prox != "off"
        if self.uses_text:  # no SPIM, no prompt path (and no parameters nothing would train)
            self.null_text = nn.Parameter(torch.zeros(cfg.text_dim))
            self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, cfg.text_hidden), nn.GELU())
        scales, dims = cfg.stage_scales(), cfg.stage_dims()
        fold = cfg.prox == "2d"
        if cfg.prox != "off":
            self.spmns = nn.ModuleList(SPMN(cfg, d, f) for d, f in zip(dims, scales))
            self.memory = nn.ModuleList(
                Resample(dims[k - 1], dims[k], scales[k - 1], scales[k], fold)
                for k in range(1, cfg.stages))
            self.skip_from = {}
            for k in range(cfg.stages):  # U-shape: the last earlier stage at the same scale
                earlier = [j for j in range(k - 1) if scales[j] == scales[k]]
                if cfg.multiscale and earlier:
                    self.skip_from[k] = earlier[-1]
            self.skips = nn.ModuleDict({str(k): Pointwise(dims[j], dims[k])
                                        for k, j in self.skip_from.items()})

    def routing_balance_loss(self) -> torch.Tensor:
        """Mean over the spatial SPIMs of ``E * sum_i load_i**2 - 1`` from the last training
        forward pass, ``load_i`` the mean routing weight of expert ``i`` over the batch and
        positions: 0 when the experts share the load evenly, ``E - 1`` when one takes all.
        A zero tensor when the model routes nothing."""
        terms = [m.balance for m in self.modules() if getattr(m, "balance", None) is not None]
        if not terms:
            return torch.zeros((), device=next(self.parameters()).device)
        return torch.stack(terms).mean()

    def text(self, text_embeds: torch.Tensor | None, batch: int, ref: torch.Tensor,
             prompt_drop: torch.Tensor | None = None):
        if text_embeds is not None and (text_embeds.ndim != 2 or
                                        text_embeds.shape[1] != self.cfg.text_dim):
            raise ValueError(f"text_embeds must be (B, {self.cfg.text_dim}), got "
                             f"{tuple(text_embeds.shape)}; set text_dim to your encoder's")
        if not self.uses_text:
            return None
        return self.text_proj(prompt_or_null(text_embeds, self.null_text, batch, ref,
                                             self.cfg.prompt_dropout, self.training,
                                             prompt_drop))

    def initial(self, ms: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        """X_0 ``(B, C, rh, rw)``: the MS expanded with interp23tap, or a classical fusion
        (BT-H, MTF-GLP-FS with the generic MTF gains) or ``a+b`` their mean, clamped to
        [0, 2 max(ms)] so a near-zero intensity cannot blow it up; ``a|b`` a learned mix of
        the two clamped starts (:class:`StartGate`; the only part of X_0 with gradients)."""
        if self.cfg.initial_estimate == "exp":
            with torch.no_grad():
                return interp23tap(ms, self.cfg.ratio)
        from ..methods.classical.brovey import bt_h
        from ..methods.classical.glp import mtf_glp_fs

        run = {"bt-h": lambda: bt_h(ms, pan, None, self.cfg.ratio),
               "mtf-glp-fs": lambda: mtf_glp_fs(ms, pan, "generic", self.cfg.ratio)}
        from ..reproducible import fixed_order

        top = 2 * ms.flatten(1).amax(1).view(-1, 1, 1, 1)
        # their global statistics summed in one order at any thread count (reproducible.py)
        with torch.no_grad(), fixed_order():
            if "|" in self.cfg.initial_estimate:
                a, b = (torch.minimum(run[n]().clamp_(min=0), top)
                        for n in self.cfg.initial_estimate.split("|"))
            else:
                names = self.cfg.initial_estimate.split("+")
                return torch.minimum((sum(run[n]() for n in names) / len(names)).clamp_(min=0),
                                     top)
        return self.start_gate(a, b, pan)

    def project(self, x: torch.Tensor, ms: torch.Tensor) -> torch.Tensor:
        """``consistency`` back-projection steps ``x += interp23tap(ms - decimate(MTF_g(x)))``
        on ``(B, C, rh, rw)`` and ``(B, C, h, w)``: each removes most of what remains of the
        fused image's disagreement with the MS at the MS scale (its low frequencies), leaving
        the detail above the MTF cut-off to the network. ``MTF_g``: the toolbox's 41-tap
        Gaussian with the generic Nyquist gain 0.3, replicate borders; decimation with the
        toolbox phase (the Wald reduction of :func:`sumdun.degrade.wald`)."""
        from ..degrade import decimate, mtf_filter

        r = self.cfg.ratio
        k = torch.from_numpy(mtf_kernels("generic", r, n_bands=1)[0]).to(x.dtype)
        for _ in range(self.cfg.consistency):
            x = x + interp23tap(ms - decimate(mtf_filter(x, k.to(x.device)), r), r)
        return x

    def forward(self, ms: torch.Tensor, pan: torch.Tensor,
                text_embeds: torch.Tensor | None = None, return_stages: bool = False,
                prompt_drop: torch.Tensor | None = None):
        """``(B, C, h, w)``, ``(B, 1, rh, rw)``, ``(B, D)`` -> ``(B, C, rh, rw)``.
        ``prompt_drop`` ``(B,)`` bool: in training, which prompts to replace by the null one
        (drawn inside with ``prompt_dropout`` when None)."""
        r = self.cfg.ratio
        b, c, h, w = ms.shape
        if pan.shape != (b, 1, r * h, r * w):
            raise ValueError(f"pan {tuple(pan.shape)} must be (B, 1, {r}h, {r}w) for ms "
                             f"{tuple(ms.shape)}")
        f_max = max(self.cfg.stage_scales()) if self.cfg.prox != "off" else 1
        if (r * h) % f_max or (r * w) % f_max:
            raise ValueError(f"PAN size {r * h} x {r * w} must be a multiple of {f_max} (the "
                             "coarsest stage scale); pad or crop the patch")
        if self.cfg.prox == "2d" and c > self.cfg.max_bands:
            raise ValueError(f"prox='2d' folds the bands into {self.cfg.max_bands} feature "
                             f"channels (max_bands) and cannot take {c} bands; build the model "
                             f"with max_bands >= {c}, or use prox='3d' (any band count)")
        gain = mean_gain(ms, self.cfg.norm_level) if self.cfg.input_norm == "mean" else None
        if gain is not None:  # (B, 1, 1, 1): the pair's MS mean to norm_level
            ms, pan = ms / gain, pan / gain
        x = self.initial(ms, pan)
        band_w = self.band_weights(ms)
        t = self.text(text_embeds, b, ms, prompt_drop)
        feats, stages = [], []
        for k, gdm in enumerate(self.gdms):
            x = gdm(x, ms, pan, band_w)
            if self.cfg.prox != "off":
                carry = self.memory[k - 1](feats[-1]) if k else None
                if k in self.skip_from:
                    s = self.skips[str(k)](feats[self.skip_from[k]])
                    carry = s if carry is None else carry + s
                x, feat = self.spmns[k](x, pan, t, carry)
                feats.append(feat)
            stages.append(x)
        if self.cfg.consistency:
            x = self.project(x, ms)
            stages[-1] = x
        if gain is not None:
            x, stages = x * gain, [st * gain for st in stages]
        return (x, stages, band_w) if return_stages else x
