"""BDSD and BDSD-PC: band-dependent spatial detail (toolbox ``BDSD/BDSD.m``, ``BDSD/BDSD_PC.m``).

BDSD (Garzelli 2008) estimates, at reduced resolution, per band ``k`` the MMSE weights
``gamma_k`` of ``ms_k - LP(ms_k) ≈ [LP(ms_1..C), LP(pan)] gamma_k`` and injects
``[ms_1..C, pan] gamma_k`` at full resolution; globally or on distinct ``block x block`` PAN
blocks (the toolbox's ``S``). BDSD-PC (Vivone 2019) solves the same regression with the physical
constraints ``gamma_pan >= 0`` and ``gamma_ms <= 0`` (``lsqlin``), globally.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import lsq_linear

from ...degrade import imresize, mtf_filter, mtf_kernels, pan_mtf_kernel
from ...errors import UsageError
from ..base import register
from ._common import upsample


def _blocks(x: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, R, Q, C, bh*bw)`` distinct blocks, column-major inside a block
    (MATLAB's ``b(:)``; the order does not change a regression)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // bh, bh, w // bw, bw).permute(0, 2, 4, 1, 3, 5).reshape(
        b, h // bh, w // bw, c, bh * bw)


def _unblocks(x: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    b, r, q, c, _ = x.shape
    return x.reshape(b, r, q, c, bh, bw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, r * bh, q * bw)


def check_bdsd_tile(h: int, w: int, ratio: int, block: int | None = None, **_) -> None:
    """The BDSD block must be even, a multiple of the ratio and divide the PAN size."""
    if block is not None and (block % 2 or block % ratio or h % block or w % block):
        raise UsageError(f"BDSD block {block} must be even, a multiple of the ratio {ratio}, "
                         f"and divide the PAN size {h} x {w} (toolbox BDSD.m); or use "
                         "block=None for global estimation")


@register("bdsd", "Band-Dependent Spatial Detail, MMSE injection weights (Garzelli 2008); "
          "block=None (global) or block=S for local S x S estimation")
def bdsd(ms, pan, sensor, ratio, block: int | None = None):
    lms = upsample(ms, ratio)
    h, w = pan.shape[-2:]
    bh, bw = (h, w) if block is None else (block, block)
    if block is not None:
        check_bdsd_tile(h, w, ratio, block)
    elif h % ratio or w % ratio:
        raise ValueError(f"PAN size {h} x {w} must be a multiple of the ratio {ratio}")
    c = lms.shape[1]
    # BDSD.m decimates at 3:ratio:end, i.e. the ratio // 2 phase of the toolbox's ratio 4
    o = ratio // 2
    pan_lp_d = mtf_filter(pan, pan_mtf_kernel(sensor, ratio))[..., o::ratio, o::ratio]
    ms_orig = imresize(lms, 1.0 / ratio)
    ms_lp_d = mtf_filter(ms_orig, mtf_kernels(sensor, ratio, n_bands=c))
    # reduced-resolution regression per LR block: Hd (P, C+1), targets (P, C)
    hd = _blocks(torch.cat([ms_lp_d, pan_lp_d], 1), bh // ratio, bw // ratio).transpose(-1, -2)
    target = _blocks(ms_orig - ms_lp_d, bh // ratio, bw // ratio).transpose(-1, -2)
    gram = hd.transpose(-1, -2) @ hd
    gamma = torch.linalg.solve(gram, hd.transpose(-1, -2) @ target)      # (B, R, Q, C+1, C)
    hfull = _blocks(torch.cat([lms, pan], 1), bh, bw).transpose(-1, -2)  # (B, R, Q, P, C+1)
    detail = (hfull @ gamma).transpose(-1, -2)                             # (B, R, Q, C, P)
    return lms + _unblocks(detail, bh, bw)


bdsd.check_tile = check_bdsd_tile


@register("bdsd-pc", "BDSD with physical constraints (gamma_pan >= 0, gamma_ms <= 0) solved as "
          "constrained least squares (Vivone 2019)")
def bdsd_pc(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    c = lms.shape[1]
    gt = imresize(lms, 1.0 / ratio)
    ms_lr = mtf_filter(gt, mtf_kernels(sensor, ratio, n_bands=c))
    pan_lr = imresize(mtf_filter(pan, pan_mtf_kernel(sensor, ratio)), 1.0 / ratio, "nearest")
    lower = np.r_[0.0, np.full(c, -np.inf)]
    upper = np.r_[np.inf, np.zeros(c)]
    out = torch.empty_like(lms)
    for b in range(lms.shape[0]):  # one small constrained solve per image and band
        hmat = torch.cat([pan_lr[b], ms_lr[b]], 0).flatten(1).T.cpu().numpy()     # (P, C+1)
        hfull = torch.cat([pan[b], lms[b]], 0).flatten(1).T                        # (P', C+1)
        for k in range(c):
            y = (gt[b, k] - ms_lr[b, k]).flatten().cpu().numpy()
            gamma = lsq_linear(hmat, y, bounds=(lower, upper), method="bvls", tol=1e-12).x
            g = torch.as_tensor(gamma, dtype=lms.dtype, device=lms.device)
            out[b, k] = lms[b, k] + (hfull @ g).reshape(lms.shape[-2:])
    return out
