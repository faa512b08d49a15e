"""The two assessment protocols, returning every index of the paper's tables in one dict."""
from __future__ import annotations

import torch

from .._tensor import Array
from ..sensors import Sensor
from ._common import check_ratio, cut_border, pair
from .full import full_resolution_indices
from .reduced import ergas, psnr, q2n, q_avg, sam, scc

__all__ = ["reduced_resolution", "full_resolution", "REDUCED_KEYS", "FULL_KEYS"]

REDUCED_KEYS = ("Q2n", "Q_avg", "SAM", "ERGAS", "SCC", "PSNR")
FULL_KEYS = ("D_lambda", "D_S", "HQNR")


def reduced_resolution(fused: Array, gt: Array, ratio: int = 4, border: int = 0,
                       data_range: float | None = None, block: int = 32,
                       clip: float | None = None, quantize: bool = True) -> dict:
    """Reduced-resolution indices of ``fused`` against the reference ``gt``
    (``indexes_evaluation.m``).

    Args:
        fused, gt: ``(C, H, W)`` or ``(B, C, H, W)``, same scale (e.g. digital numbers).
        ratio: PAN/MS scale ratio (for ERGAS).
        border: toolbox ``dim_cut`` (0 = no cut; the toolbox scripts use 21): removes
            ``border-1`` pixels top/left and ``border`` bottom/right before every index.
        data_range: peak value for PSNR, explicit (2047 for 11-bit DN, 1.0 for [0, 1] data).
        block: Q and Q2n block size (toolbox 32; Q2n shift = block).
        clip: when given, fused values are clipped to ``[0, clip]`` first (the toolbox's
            ``th_values`` uses ``2^L``).
        quantize: Q2n's uint16 rounding (toolbox default; False for [0, 1] float data).

    Returns:
        ``{"Q2n", "Q_avg", "SAM" (degrees), "ERGAS", "SCC", "PSNR" (dB)}``: floats for one
        image, per-image arrays/tensors for a batch.
    """
    check_ratio(ratio)
    f, g, _ = pair(fused, gt)
    single = (fused.ndim if hasattr(fused, "ndim") else len(fused.shape)) == 3
    if clip is not None:
        f = f.clamp(0, clip)
    f, g = cut_border(f, border), cut_border(g, border)
    if single:
        f, g = f[0], g[0]
    if not torch.is_tensor(fused):
        f, g = f.cpu().numpy(), g.cpu().numpy()
    return {
        "Q2n": q2n(f, g, block, block, quantize),
        "Q_avg": q_avg(f, g, block),
        "SAM": sam(f, g),
        "ERGAS": ergas(f, g, ratio),
        "SCC": scc(f, g),
        "PSNR": psnr(f, g, data_range),
    }


def full_resolution(fused: Array, ms: Array, pan: Array, sensor: str | Sensor,
                    ratio: int = 4, block: int = 32) -> dict:
    """Full-resolution indices (``indexes_evaluation_FS.m`` with HQNR):
    ``{"D_lambda": D_lambda^K, "D_S": D_S, "HQNR": (1 - D_lambda)(1 - D_S)}``."""
    dl, ds, h = full_resolution_indices(fused, ms, pan, sensor, ratio, block)
    return {"D_lambda": dl, "D_S": ds, "HQNR": h}
