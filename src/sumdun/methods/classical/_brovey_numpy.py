"""BT-H on numpy arrays, without torch: the implementation behind
:func:`sumdun.methods.classical.brovey.bt_h` for arrays, step for step the torch one
(:mod:`._brovey_torch`) with the operators of :mod:`sumdun.degrade_numpy`."""
from __future__ import annotations

import numpy as np

from ... import degrade_numpy as dn
from ...kernels import lp_gauss_kernel
from .brovey import HAZE_FRACTIONS_4, haze_is_band_minimum, intensity_map


def haze(lms: np.ndarray) -> np.ndarray:
    """Per-band haze ``L`` ``(C, 1, 1)`` of ``lms (C, H, W)``: for 4 bands (B, G, R, NIR)
    fractions of each band's 1st percentile (MATLAB ``prctile``: numpy's 'hazen' method);
    otherwise each band's minimum."""
    c = lms.shape[0]
    flat = lms.reshape(c, -1)
    if haze_is_band_minimum(c):
        h = flat.min(-1)
    else:
        h = np.percentile(flat, 1, axis=-1, method="hazen") * np.array(HAZE_FRACTIONS_4)
    return h.astype(lms.dtype).reshape(c, 1, 1)


def _regress_pixels(lms: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares on the pixels (``ILRc \\ IHc``), for normal equations too ill-conditioned
    to solve: ``(C,)``."""
    a = lms.reshape(lms.shape[0], -1).T.astype(np.float64)
    return np.linalg.lstsq(a, target.reshape(-1).astype(np.float64), rcond=None)[0]


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """``gram \\ rhs``, or None when ``gram``'s condition number exceeds 1e10 (as
    :func:`._common.solve_normal_equations`)."""
    eig = np.linalg.eigvalsh(gram)
    if not eig[0] > eig[-1] * 1e-10:
        return None
    return np.linalg.solve(gram, rhs)


def bt_h_one(ms: np.ndarray, pan: np.ndarray, ratio: int, rows: int = 32) -> np.ndarray:
    """BT-H of one pair ``ms (C, h, w)``, ``pan (1, H, W)`` -> ``(C, H, W)`` in their dtype
    (float32 or float64), statistics in float64."""
    lms = dn.interp23tap(ms, ratio)                                   # becomes the output
    L = haze(lms)                                                     # (C, 1, 1)
    above_haze = haze_is_band_minimum(ms.shape[0])
    pan_lr = dn.lowpass_replicate(pan, lp_gauss_kernel(ratio))        # (1, H, W)
    gram = dn.interp23tap_gram(ms, ratio)                             # (C, C)
    adjoint = dn.interp23tap_adjoint(pan_lr, ratio)                   # U^T pan_lr, MS grid
    rhs = dn.inner_products64(ms, adjoint)[:, 0]                      # lms^T pan_lr (C,)
    alpha = _solve(gram, rhs)
    if alpha is None:
        alpha = _regress_pixels(lms, pan_lr)
    offset, scale, shift = intensity_map(
        alpha, gram, dn.sums64(ms) * ratio * ratio, L[:, 0, 0].astype(np.float64),
        dn.sums64(pan_lr)[0], dn.inner_products64(pan_lr, pan_lr)[0, 0],
        pan.shape[-2] * pan.shape[-1], np.einsum)
    eps = np.finfo(np.float64).eps
    dt = lms.dtype
    a_dt, off_dt = alpha.astype(dt)[None], dt.type(offset)
    scale, shift = dt.type(scale), dt.type(shift)
    width = lms.shape[-1]
    for r in range(0, lms.shape[-2], rows):                           # strips stay in cache
        strip = lms[:, r:r + rows]
        h = strip.shape[-2]
        intensity = (a_dt @ strip.reshape(strip.shape[0], -1)).reshape(h, width)
        intensity -= off_dt
        intensity += dt.type(eps)
        gain = pan[0, r:r + rows] * scale
        gain += shift
        gain /= intensity                                             # pan_eq / (I + eps)
        strip -= L
        if not above_haze:
            np.maximum(strip, 0, out=strip)
        strip *= gain
        strip += L                                                    # (lms - L) gain + L
    return lms


def bt_h_numpy(ms: np.ndarray, pan: np.ndarray, ratio: int, rows: int = 32) -> np.ndarray:
    """BT-H of a batch ``ms (B, C, h, w)``, ``pan (B, 1, H, W)`` -> ``(B, C, H, W)``."""
    if len(ms) == 1:
        return bt_h_one(ms[0], pan[0], ratio, rows)[None]
    return np.stack([bt_h_one(m, p, ratio, rows) for m, p in zip(ms, pan)])
