"""Full-resolution (no-reference) indices: fused vs the original MS and PAN, as the toolbox.

Inputs: ``fused`` ``(C, H, W)``, ``ms`` ``(C, H/ratio, W/ratio)``, ``pan`` ``(1, H, W)`` (or
batches), digital numbers; H and W multiples of the block size (a toolbox requirement).
Sources: ``Quality_Indices/{D_lambda_K,D_s,HQNR,D_lambda,QNR}.m`` of the public toolbox copy in
``liangjiandeng/DLPan-Toolbox``.
"""
from __future__ import annotations

import torch

from .._tensor import Array
from ..degrade import decimate as _decimate
from ..degrade import imresize, interp23tap, mtf_filter, mtf_kernels
from ..sensors import Sensor, get_sensor
from ._common import check_multiple, check_ratio, f64
from .reduced import q2n_map

__all__ = ["d_lambda_k", "d_s", "hqnr", "full_resolution_indices", "d_lambda", "qnr",
           "block_uqi"]


def _inputs(fused, ms, pan=None, ratio=4):
    ratio = check_ratio(ratio)
    f, res = f64(fused, "fused")
    m, _ = f64(ms, "ms")
    m = m.to(f.device)
    if m.shape[:2] != f.shape[:2] or tuple(f.shape[-2:]) != (m.shape[-2] * ratio,
                                                            m.shape[-1] * ratio):
        raise ValueError(f"fused {tuple(f.shape)} must be the ms {tuple(m.shape)} upsampled by "
                         f"the ratio {ratio} (same batch and band count)")
    p = None
    if pan is not None:
        p, _ = f64(pan, "pan")
        p = p.to(f.device)
        if p.shape[1] != 1 or p.shape[0] != f.shape[0] or p.shape[-2:] != f.shape[-2:]:
            raise ValueError(f"pan {tuple(p.shape)} must be one band on the fused grid "
                             f"{tuple(f.shape[-2:])}")
    return f, m, p, res, ratio


def block_uqi(x: torch.Tensor, y: torch.Tensor, block: int) -> torch.Tensor:
    """Q of each distinct ``block x block`` block (``blockproc`` + ``uqi`` of ``D_s.m``):
    ``4 cov(x,y) m_x m_y / ((var x + var y)(m_x^2 + m_y^2))``, ``(B, C, H, W) -> (B, C, r, c)``;
    ``y`` may have one band (broadcast). The block sums come from one batched Gram matrix of
    ``[x; y; 1]`` per block (raw sums, exact for integer digital numbers). Raises when a block
    of both images is constant (the toolbox would give NaN)."""
    b, c, h, w = x.shape
    cy = y.shape[1]
    r, q, n = h // block, w // block, block * block
    stack = x.new_empty(b, r, q, c + cy + 1, block, block)
    stack[..., :c, :, :] = x.reshape(b, c, r, block, q, block).permute(0, 2, 4, 1, 3, 5)
    stack[..., c:c + cy, :, :] = y.reshape(b, cy, r, block, q, block).permute(0, 2, 4, 1, 3, 5)
    stack[..., -1, :, :] = 1.0
    flat = stack.flatten(-2)
    g = flat @ flat.transpose(-1, -2)                         # (B, r, q, c+cy+1, c+cy+1)
    sx, sy = g[..., :c, -1], g[..., c:c + cy, -1]
    sxx = torch.diagonal(g[..., :c, :c], dim1=-2, dim2=-1)
    syy = torch.diagonal(g[..., c:c + cy, c:c + cy], dim1=-2, dim2=-1)
    sxy = g[..., :c, c:c + cy] if cy > 1 else g[..., :c, c:c + 1][..., 0]
    if cy > 1:
        sxy = torch.diagonal(sxy, dim1=-2, dim2=-1)
    mx, my = sx / n, sy / n
    cxy = (n * sxy - sx * sy) / (n * (n - 1))
    vxy = (n * sxx - sx * sx + n * syy - sy * sy) / (n * (n - 1))
    den = vxy * (mx**2 + my**2)
    if (den == 0).any():
        raise ValueError("a block where both images are constant (a nodata area?) makes the Q "
                         "index undefined (NaN in the toolbox); crop or mask such areas")
    return (4 * cxy * mx * my / den).permute(0, 3, 1, 2)


def d_lambda_k(fused: Array, ms: Array, sensor: str | Sensor, ratio: int = 4, block: int = 32,
               quantize: bool = True, decimate: bool = False):
    """Khan's spectral distortion ``D_lambda^K`` (``D_lambda_K.m``), in [0, 1], 0 is best.

    Toolbox (default): ``1 - Q2n(MTF(fused), interp23tap(ms))`` at PAN scale, block and shift
    ``block``: the fused image is filtered with the sensor's MS MTF kernels but not decimated, and
    compared with the 23-tap expansion of the MS. ``decimate=True`` gives Khan's original form
    instead, ``1 - Q2n(decimate(MTF(fused)), ms)`` at MS scale with the same block size
    (needs MS sides multiple of ``block``). ``quantize`` as in :func:`sumdun.metrics.q2n`.
    """
    f, m, _, res, ratio = _inputs(fused, ms, None, ratio)
    s = get_sensor(sensor)
    if decimate:
        lp = mtf_filter(f, mtf_kernels(s, ratio, n_bands=f.shape[1]))
        check_multiple(m, block, "D_lambda_K (decimated)")
        return res(1.0 - q2n_map(_decimate(lp, ratio), m, block, block, quantize).flatten(1).mean(1))
    check_multiple(f, block, "D_lambda_K")
    return res(_d_lambda_k(f, interp23tap(m, ratio), s, ratio, block, quantize))


def _d_lambda_k(f, msexp, sensor: Sensor, ratio, block, quantize) -> torch.Tensor:
    lp = mtf_filter(f, mtf_kernels(sensor, ratio, n_bands=f.shape[1]))
    return 1.0 - q2n_map(lp, msexp, block, block, quantize).flatten(1).mean(1)


def d_s(fused: Array, ms: Array, pan: Array, ratio: int = 4, block: int = 32, q: float = 1.0):
    """Spatial distortion ``D_S`` (``D_s.m``, toolbox 1.0 option), in [0, 1], 0 is best.

    ``D_S = (mean_c |Q(fused_c, pan) - Q(msexp_c, pan_lp)|^q)^(1/q)`` where ``Q`` is the mean
    of the Q index over distinct ``block x block`` blocks, ``msexp = interp23tap(ms)`` and the
    degraded PAN is ``pan_lp = interp23tap(imresize(pan, 1/ratio))`` (MATLAB bicubic with
    antialiasing, then the 23-tap expansion) — not a box filter.
    """
    f, m, p, res, ratio = _inputs(fused, ms, pan, ratio)
    check_multiple(f, block, "D_s")
    return res(_d_s(f, interp23tap(m, ratio), p, ratio, block, q))


def _d_s(f, msexp, p, ratio, block, q) -> torch.Tensor:
    pan_lp = interp23tap(imresize(p, 1.0 / ratio), ratio)
    q_high = block_uqi(f, p, block).mean(dim=(-2, -1))
    q_low = block_uqi(msexp, pan_lp, block).mean(dim=(-2, -1))
    return ((q_high - q_low).abs() ** q).mean(1) ** (1.0 / q)


def hqnr(fused: Array, ms: Array, pan: Array, sensor: str | Sensor, ratio: int = 4,
         block: int = 32):
    """Hybrid QNR (``HQNR.m``): ``(1 - D_lambda^K) (1 - D_S)``, in [0, 1], 1 is best."""
    return full_resolution_indices(fused, ms, pan, sensor, ratio, block)[2]


def full_resolution_indices(fused: Array, ms: Array, pan: Array, sensor: str | Sensor,
                            ratio: int = 4, block: int = 32):
    """``(D_lambda^K, D_S, HQNR)`` sharing the 23-tap expansion of the MS between the two."""
    f, m, p, res, ratio = _inputs(fused, ms, pan, ratio)
    check_multiple(f, block, "HQNR")
    msexp = interp23tap(m, ratio)
    dl = _d_lambda_k(f, msexp, get_sensor(sensor), ratio, block, True)
    ds = _d_s(f, msexp, p, ratio, block, 1.0)
    return res(dl), res(ds), res((1 - dl) * (1 - ds))


def d_lambda(fused: Array, ms: Array, ratio: int = 4, block: int = 32, p: float = 1.0):
    """Classic QNR spectral distortion (``D_lambda.m``, toolbox 1.0 option), 0 is best.

    ``(mean_{i<j} |Q(fused_i, fused_j) - Q(msexp_i, msexp_j)|^p)^(1/p)``, Q over distinct blocks,
    ``msexp = interp23tap(ms)``. Not Khan's ``D_lambda^K`` (see :func:`d_lambda_k`).
    """
    f, m, _, res, ratio = _inputs(fused, ms, None, ratio)
    check_multiple(f, block, "D_lambda")
    c = f.shape[1]
    if c < 2:
        raise ValueError("D_lambda compares pairs of bands: it needs at least 2 bands")
    msexp = interp23tap(m, ratio)
    i, j = torch.triu_indices(c, c, 1)
    qf = block_uqi(f[:, i], f[:, j], block).mean(dim=(-2, -1))
    qe = block_uqi(msexp[:, i], msexp[:, j], block).mean(dim=(-2, -1))
    return res(((qf - qe).abs() ** p).mean(1) ** (1.0 / p))


def qnr(fused: Array, ms: Array, pan: Array, ratio: int = 4, block: int = 32, p: float = 1.0,
        q: float = 1.0, alpha: float = 1.0, beta: float = 1.0):
    """Classic QNR (``QNR.m``): ``(1 - D_lambda)^alpha (1 - D_S)^beta``. Not HQNR."""
    dl = d_lambda(fused, ms, ratio, block, p)
    ds = d_s(fused, ms, pan, ratio, block, q)
    return (1 - dl) ** alpha * (1 - ds) ** beta
