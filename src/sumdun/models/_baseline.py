"""What every deep baseline shares with SUM-DUN in training and fusion.

A baseline is an ``nn.Module`` with a dataclass ``cfg`` (``bands``, ``ratio``, ``input_norm``,
``norm_level``, ``prompt_dropout``, ``as_dict()``) and
``forward(ms (B, C, h, w), pan (B, 1, rh, rw), text_embeds=None, prompt_drop=None) -> (B, C, rh,
rw)``, so :func:`sumdun.engine.train.fit`, :mod:`sumdun.evaluation` and the fusion registry treat
it exactly like SUM-DUN. :class:`Baseline` does the common part: it checks the shapes, applies
SUM-DUN's normalisation (``input_norm="mean"``: each pair divided by its MS mean times
``norm_level``, the output scaled back, so any bit depth fuses alike), expands the MS with
``interp23tap`` (the ``lms`` every upstream network takes) and calls ``fuse(lms, ms, pan,
text)`` of the subclass.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from ..degrade import interp23tap
from .layers import mean_gain

__all__ = ["BaselineConfig", "Baseline", "ResBlock"]


@dataclass
class BaselineConfig:
    """Fields every baseline has; subclasses add their architecture's."""

    bands: int = 8                  # band count the weights are for (upstream: one net per count)
    ratio: int = 4
    input_norm: str = "mean"        # "mean" (as the shipped SUM-DUN) or "none"
    norm_level: float = 0.15
    prompt_dropout: float = 0.0     # only TMDiff reads prompts
    text_dim: int = 384

    def as_dict(self) -> dict:
        """JSON-ready: tuples as lists, so a saved configuration compares equal when read."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class Baseline(nn.Module):
    """Shape checks, normalisation and the expanded MS around a subclass's :meth:`fuse`."""

    uses_text = False
    #: PAN sides must be multiples of this (U-Nets, wavelet levels)
    multiple = 1

    def __init__(self, cfg: BaselineConfig):
        super().__init__()
        if cfg.input_norm not in ("none", "mean"):
            raise ValueError(f"input_norm must be 'none' or 'mean', got {cfg.input_norm!r}")
        self.cfg = cfg

    def normalise(self, ms: torch.Tensor, pan: torch.Tensor):
        """``(gain, ms / gain, pan / gain, lms)``: ``gain`` ``(B, 1, 1, 1)`` the pair's divisor
        (its MS mean over ``norm_level`` with ``input_norm="mean"``, else 1) and ``lms`` the
        normalised MS expanded with interp23tap."""
        if self.cfg.input_norm == "mean":
            gain = mean_gain(ms, self.cfg.norm_level)
        else:
            gain = torch.ones(ms.shape[0], 1, 1, 1, device=ms.device, dtype=ms.dtype)
        ms, pan = ms / gain, pan / gain
        with torch.no_grad():
            lms = interp23tap(ms, self.cfg.ratio)
        return gain, ms, pan, lms

    def routing_balance_loss(self) -> torch.Tensor:
        """No routing: 0 (the training loop adds it for SUM-DUN's experts)."""
        return torch.zeros((), device=next(self.parameters()).device)

    def fuse(self, lms: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor,
             text: torch.Tensor | None, prompt_drop: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, ms: torch.Tensor, pan: torch.Tensor,
                text_embeds: torch.Tensor | None = None,
                prompt_drop: torch.Tensor | None = None) -> torch.Tensor:
        r, c = self.cfg.ratio, self.cfg.bands
        b, cin, h, w = ms.shape
        if cin != c:
            raise ValueError(f"{type(self).__name__} weights are for {c}-band MS, got {cin} "
                             "bands; use the checkpoint for that band count")
        if pan.shape != (b, 1, r * h, r * w):
            raise ValueError(f"pan {tuple(pan.shape)} must be (B, 1, {r}h, {r}w) for ms "
                             f"{tuple(ms.shape)}")
        if (r * h) % self.multiple or (r * w) % self.multiple:
            raise ValueError(f"PAN size {r * h} x {r * w} must be a multiple of "
                             f"{self.multiple} for {type(self).__name__}; pad or crop")
        gain, ms, pan, lms = self.normalise(ms, pan)
        return self.fuse(lms, ms, pan, text_embeds, prompt_drop) * gain


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 plus the input (PanNet, FusionNet)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
