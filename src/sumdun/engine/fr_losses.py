"""Full-resolution losses: train or adapt on MS + PAN pairs that have no reference.

After M. Ciotola, S. Vitale, A. Mazza, G. Poggi, G. Scarpa, "Pansharpening by convolutional
neural networks in the full resolution framework", IEEE TGRS 60, 2022 (Z-PNN):

* **Spectral consistency** ``L_lambda = mean |decimate(MTF(F)) - MS|``: the fused image ``F``
  ``(B, C, rH, rW)``, filtered band by band with the sensor's MTF (the toolbox's ``genMTF``
  kernels, replicate borders) and decimated with the toolbox's phase (rows and columns
  ``r//2 + r k``, as :func:`sumdun.degrade.decimate`), must give back the MS ``(B, C, H, W)``.
  Zero exactly when ``F`` satisfies the degradation model.
* **Spatial consistency** ``L_S = mean_{b,p} (1 - rho_bp) [rho_bp < rho_max_bp]``:
  ``rho_bp`` is the local correlation coefficient, over ``window x window`` windows (default the
  ratio), between fused band ``b`` and the PAN at position ``p``; ``rho_max_bp`` the same
  coefficient between the interpolated MS band and the PAN low-passed by its MTF, the
  correlation the MS already allows. Where the fused band correlates with the PAN at least that
  well the term is 0, so the loss rewards PAN detail only up to what the MS justifies.

Both are differentiable in ``F``, batched, and on any scale (digital numbers or [0, 1]; the
spectral term is in the units of the inputs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..degrade import interp23tap, mtf_filter, mtf_kernels, pan_mtf_kernel
from ..sensors import sensor_for_bands

__all__ = ["spectral_consistency_loss", "local_correlation", "spatial_consistency_loss"]


def _degrade(fused: torch.Tensor, sensor, ratio: int) -> torch.Tensor:
    s = sensor_for_bands(sensor, fused.shape[1])
    k = torch.tensor(mtf_kernels(s, ratio, n_bands=fused.shape[1]), dtype=fused.dtype,
                        device=fused.device)
    o = ratio // 2
    return mtf_filter(fused, k)[..., o::ratio, o::ratio]


def spectral_consistency_loss(fused: torch.Tensor, ms: torch.Tensor, sensor=None,
                              ratio: int = 4) -> torch.Tensor:
    """``mean |decimate(MTF(fused)) - ms|`` (scalar): ``fused`` ``(B, C, rH, rW)``, ``ms``
    ``(B, C, H, W)``; ``sensor`` gives the MTF gains (generic when None)."""
    if fused.shape[-2:] != (ms.shape[-2] * ratio, ms.shape[-1] * ratio) or \
            fused.shape[:2] != ms.shape[:2]:
        raise ValueError(f"fused {tuple(fused.shape)} must be ms {tuple(ms.shape)} x {ratio}")
    return (_degrade(fused, sensor, ratio) - ms).abs().mean()


def local_correlation(x: torch.Tensor, y: torch.Tensor, window: int,
                      eps: float = 1e-10) -> torch.Tensor:
    """Correlation coefficient of ``x`` ``(B, C, H, W)`` and ``y`` ``(B, 1 or C, H, W)`` over every
    ``window x window`` window ('valid'): ``(B, C, H - window + 1, W - window + 1)``."""
    y = y.expand_as(x)
    b, c, h, w = x.shape

    def mean(t):
        return F.avg_pool2d(t.reshape(b * c, 1, h, w), window, stride=1).reshape(
            b, c, h - window + 1, w - window + 1)

    mx, my = mean(x), mean(y)
    cov = mean(x * y) - mx * my
    vx = (mean(x * x) - mx * mx).clamp_min(0)
    vy = (mean(y * y) - my * my).clamp_min(0)
    return cov / torch.sqrt(vx * vy + eps)


def spatial_consistency_loss(fused: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor,
                             sensor=None, ratio: int = 4,
                             window: int | None = None) -> torch.Tensor:
    """Z-PNN's structural loss (scalar, in [0, 2]): ``fused`` ``(B, C, rH, rW)``, ``ms``
    ``(B, C, H, W)``, ``pan`` ``(B, 1, rH, rW)``."""
    window = window or ratio
    s = sensor_for_bands(sensor, fused.shape[1])
    with torch.no_grad():
        k = torch.tensor(pan_mtf_kernel(s, ratio), dtype=pan.dtype, device=pan.device)
        pan_lp = mtf_filter(pan, k)
        rho_max = local_correlation(interp23tap(ms.detach(), ratio), pan_lp, window)
    rho = local_correlation(fused, pan, window)
    return ((1.0 - rho) * (rho < rho_max)).mean()
