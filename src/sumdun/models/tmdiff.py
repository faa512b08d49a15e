"""TMDiff (Xing, Zhang, He, Zhang, Zhang, "Empower generalizability for pansharpening through
text-modulated diffusion model", IEEE TGRS 2024): a conditional diffusion model of the
residual ``gt - lms``, its denoiser conditioned on lms and PAN and modulated by the embedding of
a text describing the scene.

Denoiser: a two-level U-Net on ``[r_t, lms, pan]`` (``r_t`` the noisy residual), residual
blocks with GroupNorm and SiLU, each modulated (FiLM: scale and shift per channel) by the
diffusion time embedding plus the projected text embedding (sumdun's text encoders, the same
embeddings as SUM-DUN's prompts; a learned null embedding without text, and with probability
``prompt_dropout`` in training). It predicts the clean residual ``r_0`` (x0 parameterisation),
which a deterministic DDIM sampler with few steps (``sample_steps``, default 4, cosine
schedule of ``timesteps``) needs. The output layer starts at zero (as ADM's), so the untrained
model returns lms rather than noise. Training loss: L1 of the predicted ``r_0`` at a random time
(:meth:`TMDiff.training_loss`, which :func:`sumdun.engine.train.fit` calls instead of its
L1). Sampling starts from noise drawn from a fixed seed, so a fusion is reproducible.

Reduced width, stated: upstream's denoiser has 30.9 M parameters (plus a frozen CLIP text
encoder), which this 2-core CPU cannot train; ``width=32`` gives 0.367 M parameters (8 bands),
1.2 % of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._baseline import Baseline, BaselineConfig
from .layers import prompt_or_null

__all__ = ["TMDiffConfig", "TMDiff"]


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], -1)


class FiLMBlock(nn.Module):
    def __init__(self, din: int, dout: int, cond: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(4, din)
        self.conv1 = nn.Conv2d(din, dout, 3, padding=1)
        self.norm2 = nn.GroupNorm(4, dout)
        self.conv2 = nn.Conv2d(dout, dout, 3, padding=1)
        self.film = nn.Linear(cond, 2 * dout)
        self.skip = nn.Conv2d(din, dout, 1) if din != dout else nn.Identity()

    def forward(self, x, c):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(c)[..., None, None].chunk(2, 1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


@dataclass
class TMDiffConfig(BaselineConfig):
    width: int = 32
    timesteps: int = 1000
    sample_steps: int = 4
    seed: int = 0
    prompt_dropout: float = 0.1


class TMDiff(Baseline):
    uses_text = True
    multiple = 2

    def __init__(self, cfg: TMDiffConfig):
        super().__init__(cfg)
        c, w = cfg.bands, cfg.width
        cond = 4 * w
        self.time_mlp = nn.Sequential(nn.Linear(w, cond), nn.SiLU(), nn.Linear(cond, cond))
        self.text_mlp = nn.Sequential(nn.Linear(cfg.text_dim, cond), nn.SiLU(),
                                      nn.Linear(cond, cond))
        self.null_text = nn.Parameter(torch.zeros(cfg.text_dim))
        self.inp = nn.Conv2d(2 * c + 1, w, 3, padding=1)
        self.enc1 = FiLMBlock(w, w, cond)
        self.down = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.enc2 = FiLMBlock(2 * w, 2 * w, cond)
        self.mid = FiLMBlock(2 * w, 2 * w, cond)
        self.up = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = FiLMBlock(2 * w, w, cond)
        self.out = nn.Conv2d(w, c, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # the untrained model predicts r_0 = 0: it fuses to lms
        nn.init.zeros_(self.out.bias)    # (ADM's zero-initialised output layer)
        t = torch.arange(cfg.timesteps + 1, dtype=torch.float64) / cfg.timesteps
        alpha_bar = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        self.register_buffer("alpha_bar", (alpha_bar / alpha_bar[0]).float()[1:],
                             persistent=False)

    def _text(self, text, batch, ref, prompt_drop):
        if text is not None and (text.ndim != 2 or text.shape[1] != self.cfg.text_dim):
            raise ValueError(f"text_embeds must be (B, {self.cfg.text_dim}), got "
                             f"{tuple(text.shape)}")
        return self.text_mlp(prompt_or_null(text, self.null_text, batch, ref,
                                            self.cfg.prompt_dropout, self.training,
                                            prompt_drop))

    def denoise(self, r_t, t, lms, pan, text_c):
        """Predicted clean residual ``r_0`` from ``r_t`` at integer times ``t`` ``(B,)``."""
        c = self.time_mlp(_timestep_embedding(t, self.cfg.width)) + text_c
        h1 = self.enc1(self.inp(torch.cat([r_t, lms, pan], 1)), c)
        h2 = self.mid(self.enc2(self.down(h1), c), c)
        return self.out(self.dec1(torch.cat([self.up(h2), h1], 1), c))

    def training_loss(self, ms, pan, gt, text=None, prompt_drop=None) -> torch.Tensor:
        """Mean L1 of the predicted clean residual at a random time (on the normalised scale,
        divided by the pair's gain so it matches the engine's L1 on [0, 1] data)."""
        gain, ms_n, pan_n, lms = self.normalise(ms, pan)
        r0 = gt / gain - lms
        b = ms.shape[0]
        t = torch.randint(0, self.cfg.timesteps, (b,), device=ms.device)
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        r_t = ab.sqrt() * r0 + (1 - ab).sqrt() * torch.randn_like(r0)
        pred = self.denoise(r_t, t, lms, pan_n, self._text(text, b, ms, prompt_drop))
        return ((pred - r0).abs() * gain).mean()

    def fuse(self, lms, ms, pan, text, prompt_drop):
        b = lms.shape[0]
        text_c = self._text(text, b, lms, prompt_drop)
        g = torch.Generator(device="cpu").manual_seed(self.cfg.seed)
        r = torch.randn(lms.shape, generator=g).to(lms)
        times = torch.linspace(self.cfg.timesteps - 1, 0, self.cfg.sample_steps + 1).long()
        for i in range(self.cfg.sample_steps):      # DDIM, eta = 0
            t, t_next = int(times[i]), int(times[i + 1])
            r0 = self.denoise(r, torch.full((b,), t, device=lms.device), lms, pan, text_c)
            ab, ab_next = self.alpha_bar[t], self.alpha_bar[t_next]
            eps = (r - ab.sqrt() * r0) / (1 - ab).sqrt().clamp(min=1e-8)
            r = ab_next.sqrt() * r0 + (1 - ab_next).sqrt() * eps if i < self.cfg.sample_steps - 1 \
                else r0
        return lms + r
