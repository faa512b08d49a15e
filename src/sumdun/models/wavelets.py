"""One-level orthonormal Haar transform of feature maps (exact inverse), for WFANet."""
from __future__ import annotations

import torch

__all__ = ["haar_dwt", "haar_idwt"]


def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """``(B, d, H, W)`` -> ``(B, 4, d, H/2, W/2)``: LL, LH, HL, HH (H, W even)."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.stack([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], 1) / 2


def haar_idwt(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt`."""
    ll, lh, hl, hh = y.unbind(1)
    a, b = (ll + lh + hl + hh) / 2, (ll - lh + hl - hh) / 2
    c, d = (ll + lh - hl - hh) / 2, (ll - lh - hl + hh) / 2
    top = torch.stack([a, b], -1).flatten(-2)
    bottom = torch.stack([c, d], -1).flatten(-2)
    return torch.stack([top, bottom], -2).flatten(-3, -2)
