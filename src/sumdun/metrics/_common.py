"""Input handling shared by the indices: float64 batches, checks with clear errors."""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .._tensor import Array, as_batch


class Result:
    """Turns a per-image ``(B,)`` float64 tensor into the caller's kind: a float for a single
    image, else a numpy array (numpy input) or a tensor on the input's device (torch input)."""

    def __init__(self, single: bool, numpy: bool):
        self.single, self.numpy = single, numpy

    def __call__(self, v: torch.Tensor):
        if self.single:
            return float(v.reshape(-1)[0])
        return v.detach().cpu().numpy() if self.numpy else v


def f64(x: Array, name: str) -> tuple[torch.Tensor, Result]:
    """``x`` as float64 ``(B, C, H, W)``; rejects NaN and inf."""
    t, restore = as_batch(x, name, float_dtype=torch.float64)
    # one reduction instead of an isfinite() mask: a NaN or inf anywhere makes the sum non-finite
    if not math.isfinite(float(t.sum())) and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf values; mask or fill them before "
                         "computing quality indices")
    return t, Result(restore.was_single, restore.was_numpy)


def pair(fused: Array, ref: Array, names=("fused", "gt")):
    """Both images as float64 batches of equal shape."""
    a, res = f64(fused, names[0])
    b, _ = f64(ref, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)} must have "
                         "the same shape")
    return a, b.to(a.device), res


def check_ratio(ratio) -> int:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 2:
        raise ValueError(f"ratio must be an integer >= 2 (4 for every sensor in the table), "
                         f"got {ratio!r}")
    return int(ratio)


def check_block(x: torch.Tensor, block: int, what: str) -> None:
    h, w = x.shape[-2:]
    if h < block or w < block:
        raise ValueError(f"{what} needs at least one {block} x {block} block, the image is "
                         f"{h} x {w}; use a larger image or a smaller block")


def check_multiple(x: torch.Tensor, block: int, what: str) -> None:
    h, w = x.shape[-2:]
    if h % block or w % block:
        raise ValueError(f"{what} needs height and width multiples of the block size {block} "
                         f"(toolbox requirement), got {h} x {w}; crop the images")


def check_nonzero_bands(ref: torch.Tensor, what: str, name: str = "gt") -> None:
    means = ref.mean(dim=(-2, -1))
    if (means == 0).any():
        bad = sorted({int(c) for c in torch.nonzero(means == 0)[:, 1]})
        raise ValueError(f"{what} divides by the band mean of {name}, and band(s) {bad} are all "
                         "zero (nodata?); drop those bands or the nodata area")


def warn_if_normalised(*xs: torch.Tensor) -> None:
    if all(float(x.max()) <= 1.0 for x in xs):
        warnings.warn("Q2n rounds to uint16 as the toolbox's q2n.m does, but these images look "
                      "normalised to [0, 1]: almost every value becomes 0 or 1. Pass digital "
                      "numbers, or quantize=False for float data.", UserWarning, stacklevel=3)


def cut_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """The toolbox's ``I(dim_cut:end-dim_cut, dim_cut:end-dim_cut, :)`` with ``dim_cut = border``
    (1-based): ``border-1`` pixels off the top/left and ``border`` off the bottom/right."""
    if border <= 0:
        return x
    h, w = x.shape[-2:]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"border {border} leaves nothing of a {h} x {w} image")
    return x[..., border - 1:h - border, border - 1:w - border]
