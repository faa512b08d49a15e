"""Building blocks shared by the classical methods (toolbox ``Tools/``), on float64 batches."""
from __future__ import annotations

import torch

from ..degrade import interp23tap, lp_gauss_kernel, mtf_filter


def mean2(x: torch.Tensor) -> torch.Tensor:
    """Per image and band mean, ``(B, C, 1, 1)``."""
    return x.mean(dim=(-2, -1), keepdim=True)


def std2(x: torch.Tensor) -> torch.Tensor:
    """Per image and band standard deviation (N-1, MATLAB ``std2``), ``(B, C, 1, 1)``."""
    return x.flatten(-2).std(-1).unsqueeze(-1).unsqueeze(-1)


def lp_filter_gauss(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """``LPfilterGauss.m``: the 0.3-gain Gaussian low-pass, replicate borders."""
    return mtf_filter(x, lp_gauss_kernel(ratio))


def regress_global(predictors: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``estimation_alpha(.., 'global')``: least-squares weights ``(B, K)`` with
    ``target ≈ sum_k w_k predictors_k`` over all pixels (``ILRc \\ IHc``).

    Args:
        predictors: ``(B, K, H, W)``; target: ``(B, 1, H, W)``.
    """
    a = predictors.flatten(-2).transpose(-1, -2)      # (B, P, K)
    y = target.flatten(-2).transpose(-1, -2)          # (B, P, 1)
    return torch.linalg.lstsq(a, y).solution[..., 0]  # (B, K)


def upsample(ms: torch.Tensor, ratio: int) -> torch.Tensor:
    """The toolbox scripts' ``I_MS = interp23tap(I_MS_LR, ratio)``."""
    return interp23tap(ms, ratio)
