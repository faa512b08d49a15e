"""GSA, C-GSA and AWLP (toolbox ``GS/GSA.m``, ``GS/GS_Segm.m`` with ``gen_LP_image.m`` and
``k_means_clustering.m``, ``MRA/AWLP.m``; Aiazzi 2007, Restaino 2017, Otazu 2005 / Vivone 2021)."""
from __future__ import annotations

import torch

from ..degrade import decimate, imresize
from ..fusion import register
from ._common import lp_filter_gauss, mean2, regress_global, std2, upsample
from .kmeans import kmeans
from .wavelet import lp_filter_plus_dec, starck_murtagh_lowpass


@register("gsa", "Gram-Schmidt adaptive: regression-based intensity, covariance gains (Aiazzi 2007)")
def gsa(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    lms0 = lms - mean2(lms)
    ms_lr0 = ms - mean2(ms)
    pan0 = pan - mean2(pan)
    pan_lr = lp_filter_plus_dec(pan0, ratio)
    ones = torch.ones_like(ms_lr0[:, :1])
    alpha = regress_global(torch.cat([ms_lr0, ones], 1), pan_lr)             # (B, C+1)
    intensity = (lms0 * alpha[:, :-1, None, None]).sum(1, keepdim=True) + alpha[:, -1, None, None, None]
    i0 = intensity - mean2(intensity)
    # g_k = cov(I0, MS0_k) / var(I0), both with N - 1 (MATLAB cov / var)
    n = i0.shape[-1] * i0.shape[-2]
    cov = ((i0 - mean2(i0)) * (lms0 - mean2(lms0))).sum((-2, -1), keepdim=True) / (n - 1)
    g = cov / i0.flatten(-2).var(-1)[..., None, None]
    fused = lms0 + g * (pan0 - i0)
    return fused - mean2(fused) + mean2(lms)


@register("awlp", "Additive wavelet luminance proportional, Starck-Murtagh details (Otazu 2005)")
def awlp(ms, pan, sensor, ratio):
    lms = upsample(ms, ratio)
    ratio_img = lms / (lms.mean(1, keepdim=True) + torch.finfo(torch.float64).eps)
    pan_lr = imresize(imresize(pan, 1.0 / ratio), float(ratio))
    # the toolbox equalises PAN to each band (gain a_k, offset) and takes each band's details;
    # the low-pass is linear with unit DC gain, so details_k = a_k (PAN - LP(PAN)): one low-pass
    gain = std2(lms) / std2(pan_lr)                                          # (B, C, 1, 1)
    details = gain * (pan - starck_murtagh_lowpass(pan, ratio))
    return details * ratio_img + lms


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
