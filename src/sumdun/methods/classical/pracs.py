"""PRACS: partial replacement adaptive component substitution (toolbox ``PRACS/PRACS.m``,
Choi, Yu and Kim 2011)."""
from __future__ import annotations

import numpy as np
import torch

from ...degrade import imresize
from ..base import register
from ._common import mean2, std2, upsample


def _corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MATLAB ``corr2`` per image and band over pixels: ``(B, C, H, W) -> (B, C, 1, 1)``."""
    da, db = a - mean2(a), b - mean2(b)
    num = (da * db).sum(dim=(-2, -1), keepdim=True)
    return num / torch.sqrt((da * da).sum(dim=(-2, -1), keepdim=True)
                            * (db * db).sum(dim=(-2, -1), keepdim=True))


def _regress(target: torch.Tensor, predictors: torch.Tensor) -> torch.Tensor:
    """``regress(y, [1, X])`` per image: ``target (B, T, H, W)``, ``predictors (B, K, H, W)``
    -> fitted values ``(B, T, H, W)``."""
    b, k = predictors.shape[:2]
    x = torch.cat([torch.ones_like(predictors[:, :1]), predictors], 1).flatten(2).transpose(1, 2)
    y = target.flatten(2).transpose(1, 2)
    # numpy's LAPACK (OpenBLAS), not torch's MKL: MKL's least squares changes in the last bit
    # with the memory alignment of its buffers, so two identical calls could differ
    coef = torch.from_numpy(np.stack([np.linalg.lstsq(xi, yi, rcond=None)[0] for xi, yi in zip(
        x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy())]))
    coef = coef.to(device=x.device, dtype=x.dtype)                        # (B, K+1, T)
    return (x @ coef).transpose(1, 2).reshape(target.shape)


def _down_up(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Bicubic decimation then interpolation (``imresize(imresize(x, 1/r), r)``)."""
    return imresize(imresize(x, 1.0 / ratio), float(ratio))


@register("pracs", "Partial Replacement Adaptive Component Substitution (Choi 2011); "
          "beta=0.95 for 11-bit data, 1.95 for 8-bit")
def pracs(ms, pan, sensor, ratio, beta: float = 0.95):
    lms = upsample(ms, ratio)
    sp, mp = std2(pan), mean2(pan)
    hm = ((lms - mean2(lms) + mp / sp * std2(lms)) * sp / std2(lms)).clamp(min=0)
    pan_l = _down_up(pan, ratio)
    i_l = _regress(pan_l, hm)                                              # (B, 1, H, W)
    cc = _corr(i_l.expand_as(hm), hm)
    i_h = cc * pan + (1 - cc) * hm
    i_l_prime = _regress(_down_up(i_h, ratio), hm)                         # (B, C, H, W)
    delta = i_h - i_l_prime - (mean2(i_h) - mean2(i_l_prime))
    s = std2(lms)
    w = beta * _corr(i_l_prime, lms) * s / s.mean(1, keepdim=True)
    l_i = 1 - (1 - _corr(i_l.expand_as(lms), lms) * lms / i_l_prime).abs()
    return lms + w * l_i * delta
