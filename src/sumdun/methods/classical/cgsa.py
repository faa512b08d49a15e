"""C-GSA (toolbox ``GS/GS_Segm.m`` with ``gen_LP_image.m`` and ``k_means_clustering.m``;
Restaino 2017)."""
from __future__ import annotations

import torch

from ...degrade import decimate
from ..base import register
from ._common import lp_filter_gauss, regress_global, upsample
from .kmeans import kmeans


@register("c-gsa", "Context-adaptive GSA: GSA gains per k-means segment of the MS (Restaino 2017)")
def c_gsa(ms, pan, sensor, ratio, n_segments: int = 5, segments=None, seed: int = 0):
    """``GS_Segm(I_MS, I_PAN, gen_LP_image('GSA', ...), k_means_clustering(I_MS, 5))``.

    The low-resolution PAN is the regression of the decimated Gaussian low-pass PAN on
    ``[MS, 1]`` applied to the expanded MS; the gain of each band is
    ``cov(I_LR, MS_k) / var(I_LR)`` within each segment. Segments: k-means (k-means++ from
    ``seed``) of the expanded MS pixels, each band divided by its maximum, or ``segments``, an
    integer label map ``(H, W)`` or ``(B, H, W)`` at PAN size (e.g. MATLAB's). A segment
    whose low-resolution PAN is constant (one pixel) gets gain 0 (MATLAB gives NaN).
    """
    lms = upsample(ms, ratio)
    b, c, hh, ww = lms.shape
    pan_lp = decimate(lp_filter_gauss(pan, ratio), ratio)                    # (B, 1, h, w)
    alpha = regress_global(torch.cat([ms, torch.ones_like(ms[:, :1])], 1), pan_lp)
    i_lr = (lms * alpha[:, :-1, None, None]).sum(1, keepdim=True) + alpha[:, -1].view(-1, 1, 1, 1)
    if segments is not None:
        labels = torch.as_tensor(segments, device=lms.device)
        if labels.ndim == 2 and tuple(labels.shape) == (hh, ww):
            labels = labels.expand(b, hh, ww)
        if tuple(labels.shape) != (b, hh, ww) or labels.is_floating_point():
            raise ValueError(f"segments must be an integer label map (H, W) or (B, H, W) at PAN "
                             f"size {(hh, ww)}, got {tuple(labels.shape)} {labels.dtype}")
    else:
        feats = lms / lms.amax((-2, -1), keepdim=True)                       # band / max(band)
        labels = torch.stack([kmeans(f.flatten(1).to(torch.float32), n_segments,
                                     seed=seed).view(hh, ww) for f in feats])
    out = torch.empty_like(lms)
    for bi in range(b):
        _, lab = torch.unique(labels[bi].flatten(), return_inverse=True)    # 0..K-1
        gains = _segment_gains(i_lr[bi, 0].flatten(), lms[bi].flatten(1), lab)   # (C, K)
        out[bi] = lms[bi] + gains[:, lab].view(c, hh, ww) * (pan[bi] - i_lr[bi])
    return out


def _segment_gains(i_lr: torch.Tensor, ms: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``cov(I_LR, MS_k) / var(I_LR)`` per band and segment ``(C, K)``, from per-segment sums of
    the globally centred values (the common N - 1 cancels)."""
    k = int(labels.max()) + 1
    n = torch.bincount(labels, minlength=k).to(torch.float64)
    i0 = i_lr - i_lr.mean()
    s_i = torch.bincount(labels, weights=i0, minlength=k)
    var = torch.bincount(labels, weights=i0 * i0, minlength=k) - s_i * s_i / n
    gains = torch.zeros(ms.shape[0], k, dtype=ms.dtype, device=ms.device)
    ok = var > 1e-12 * var.abs().max().clamp(min=1e-300)
    for ci in range(ms.shape[0]):
        m0 = ms[ci] - ms[ci].mean()
        cov = torch.bincount(labels, weights=i0 * m0, minlength=k) - s_i * torch.bincount(
            labels, weights=m0, minlength=k) / n
        gains[ci] = torch.where(ok, cov / torch.where(ok, var, 1.0), 0.0)
    return gains
