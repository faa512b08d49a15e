"""``fuse(ms, pan, method=...)``: any registered method (:mod:`sumdun.methods`) on arrays or
tensors."""
from __future__ import annotations

from typing import Any

import numpy as np

from .methods.base import FusionMethod, register
from .methods.registry import (default_method, get_method, list_methods, method_options,
                               validate_options)
from .sensors import Sensor, sensor_for_bands

Array = Any  # numpy.ndarray | torch.Tensor (torch is imported only when a method needs it)

__all__ = ["FusionMethod", "register", "list_methods", "get_method", "fuse", "default_method",
           "method_options", "validate_options"]


def range_from_data(ms: Array, pan: Array) -> dict:
    """What the data type says about the data range: ``{"bits": 8}`` for 8-bit integers,
    ``{"data_range": 1.0}`` for floats within [0, 1] (reflectance), else ``{}`` (the sensor's
    bit depth applies)."""
    dtypes = {str(a.dtype).replace("torch.", "") for a in (ms, pan)}
    if dtypes == {"uint8"}:
        return {"bits": 8}
    if all(d.startswith("float") for d in dtypes):
        top = max(float(a.max()) for a in (ms, pan))
        if 0 < top <= 1.0:
            return {"data_range": 1.0}
    return {}


def fuse(ms: Array, pan: Array, method: str | None = None, sensor: str | Sensor | None = None,
         ratio: int = 4, **options) -> Array:
    """Pansharpen ``ms`` with ``pan``.

    Args:
        ms: ``(C, h, w)`` or ``(B, C, h, w)`` multispectral image (digital numbers or any scale).
        pan: ``(1, ratio*h, ratio*w)`` or ``(B, 1, ratio*h, ratio*w)``, same scale.
        method: a name from :func:`list_methods`; default :func:`default_method` (SUM-DUN
            with the shipped weights, as ``sumdun fuse``).
        sensor: sensor name (MTF gains for MTF-based methods); generic when None.
        ratio: PAN/MS scale ratio.
        **options: method options (toolbox defaults otherwise). For SUM-DUN without ``bits``
            or ``data_range``, 8-bit integer inputs count as 8-bit and floats within [0, 1] as
            reflectance (:func:`range_from_data`); the range only steers the prompt, since the
            network normalises each pair itself.

    Returns:
        ``(C, H, W)`` or ``(B, C, H, W)`` float, in the input's kind (numpy/torch) and scale.
        Float64, except that methods marked for it (EXP, BT-H) keep float32 inputs in float32
        (half the memory and time, ~1e-6 of the data range from the float64 result).
        Methods marked ``numpy`` (BT-H) compute numpy inputs with numpy alone: torch is not
        imported (``sumdun fuse --method bt-h`` starts in a fraction of the time).
        Classical methods run on one thread (:func:`sumdun.reproducible.fixed_order`), so
        their output is bit-identical at any thread count.
    """
    method = method or default_method()
    m = get_method(method)
    validate_options(method, options)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 2:
        raise ValueError(f"ratio must be an integer >= 2, got {ratio!r}")
    if m.family == "neural" and "bits" not in options and "data_range" not in options:
        options.update(range_from_data(ms, pan))
    both_f32 = all(str(a.dtype).replace("torch.", "") == "float32" for a in (ms, pan))
    if m.numpy and isinstance(ms, np.ndarray) and isinstance(pan, np.ndarray):
        # numpy in, numpy through: torch is never imported (``sumdun fuse --method bt-h``)
        compute = np.float32 if m.float32 and both_f32 else np.float64
        x, single = _numpy_batch(ms, "ms", compute)
        p, _ = _numpy_batch(pan, "pan", compute)
        restore = (lambda t: t[0]) if single else (lambda t: t)
    else:
        import torch

        from ._tensor import as_batch

        compute = torch.float32 if m.float32 and both_f32 else torch.float64
        x, restore = as_batch(ms, "ms", float_dtype=compute)
        p, _ = as_batch(pan, "pan", float_dtype=compute)
        p = p.to(x.device)
    if p.shape[1] != 1:
        raise ValueError(f"pan must have one band, got {p.shape[1]}")
    if p.shape[0] != x.shape[0] or tuple(p.shape[-2:]) != (x.shape[-2] * ratio,
                                                          x.shape[-1] * ratio):
        raise ValueError(f"pan {tuple(p.shape)} must be {ratio}x the size of ms "
                         f"{tuple(x.shape)} (same batch size); crop or resample the inputs")
    for name, t in (("ms", x), ("pan", p)):
        _check_bands(name, *_band_range(t))
    s = sensor_for_bands(sensor, x.shape[1])
    if m.family == "classical":  # one summation order at any thread count: bit-identical
        from .reproducible import fixed_order

        with fixed_order():
            out = m.fn(x, p, s, ratio, **options)
    else:
        out = m.fn(x, p, s, ratio, **options)
    return restore(out)


def _numpy_batch(a: np.ndarray, name: str, dtype) -> tuple[np.ndarray, bool]:
    """``(B, C, H, W)`` contiguous ``dtype`` array (a view where possible) and whether ``a``
    was a single image."""
    if a.ndim not in (3, 4):
        raise ValueError(f"{name} must be channel-first (C, H, W) or (B, C, H, W), got shape "
                         f"{tuple(a.shape)}")
    return np.ascontiguousarray(a if a.ndim == 4 else a[None], dtype=dtype), a.ndim == 3


def _band_range(t) -> tuple[np.ndarray, np.ndarray]:
    """Per image and band minimum and maximum ``(B, C)`` (numpy), in one pass for tensors."""
    if isinstance(t, np.ndarray):
        flat = t.reshape(*t.shape[:2], -1)
        return flat.min(-1), flat.max(-1)
    import torch

    lo, hi = torch.aminmax(t.flatten(-2), dim=-1)
    return lo.cpu().numpy(), hi.cpu().numpy()


def _check_bands(name: str, lo: np.ndarray, hi: np.ndarray) -> None:
    """NaN or inf show up in the range; a constant band has nothing to fuse."""
    if not (np.isfinite(lo) & np.isfinite(hi)).all():
        raise ValueError(f"{name} contains NaN or inf; fill or mask those pixels first")
    const = hi == lo
    if const.any():
        bands = sorted({int(c) for c in np.nonzero(const)[1]})
        raise ValueError(f"{name} band(s) {bands} are constant: nothing to fuse (a nodata "
                         "tile, or the wrong band?); drop them or pick another window")
