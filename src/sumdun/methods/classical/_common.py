"""Building blocks shared by the classical methods (toolbox ``Tools/``), on float64 batches."""
from __future__ import annotations

import torch

from ...degrade import interp23tap, lp_gauss_kernel, mtf_filter


def mean2(x: torch.Tensor) -> torch.Tensor:
    """Per image and band mean, ``(B, C, 1, 1)``."""
    return x.mean(dim=(-2, -1), keepdim=True)


def std2(x: torch.Tensor) -> torch.Tensor:
    """Per image and band standard deviation (N-1, MATLAB ``std2``), ``(B, C, 1, 1)``."""
    return x.flatten(-2).std(-1).unsqueeze(-1).unsqueeze(-1)


def lp_filter_gauss(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """``LPfilterGauss.m``: the 0.3-gain Gaussian low-pass, replicate borders."""
    return mtf_filter(x, lp_gauss_kernel(ratio))


def solve_normal_equations(gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor | None:
    """Least-squares weights ``(B, K)`` from ``gram = A^T A`` ``(B, K, K)`` and ``rhs = A^T y``
    ``(B, K, 1)``, float64; None when ``gram`` is too ill-conditioned for that (condition
    number > 1e10; solve on the pixels instead)."""
    eig = torch.linalg.eigvalsh(gram)
    if not bool((eig[..., 0] > eig[..., -1] * 1e-10).all()):
        return None
    return torch.linalg.solve(gram, rhs)[..., 0]


def regress_global(predictors: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``estimation_alpha(.., 'global')``: least-squares weights ``(B, K)`` with
    ``target ≈ sum_k w_k predictors_k`` over all pixels (``ILRc \\ IHc``).

    Solved from the ``K x K`` normal equations (one pass over the pixels); when those are too
    ill-conditioned it falls back to an SVD least-squares solve on the pixels (for
    rank-deficient predictors any least-squares solution gives MATLAB backslash's fit).

    Args:
        predictors: ``(B, K, H, W)``; target: ``(B, 1, H, W)``.
    """
    a = predictors.flatten(-2)                                       # (B, K, P)
    y = target.flatten(-2)                                           # (B, 1, P)
    w = solve_normal_equations(torch.matmul(a, a.transpose(-1, -2)),
                               torch.matmul(a, y.transpose(-1, -2)))
    if w is None:
        w = torch.linalg.lstsq(a.transpose(-1, -2), y.transpose(-1, -2),
                               driver="gelsd").solution[..., 0]
    return w


def upsample(ms: torch.Tensor, ratio: int) -> torch.Tensor:
    """The toolbox scripts' ``I_MS = interp23tap(I_MS_LR, ratio)``."""
    return interp23tap(ms, ratio)
