"""``fuse(ms, pan, method=...)``: any registered method (:mod:`sumdun.methods`) on arrays or
tensors."""
from __future__ import annotations

import numpy as np
import torch

from ._tensor import Array, as_batch
from .methods.base import FusionMethod, register
from .methods.registry import (default_method, get_method, list_methods, method_options,
                               validate_options)
from .sensors import Sensor, sensor_for_bands

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
    """
    method = method or default_method()
    m = get_method(method)
    validate_options(method, options)
    if m.family == "neural" and "bits" not in options and "data_range" not in options:
        options.update(range_from_data(ms, pan))
    both_f32 = all(a.dtype in (torch.float32, np.float32) for a in (ms, pan))
    compute = torch.float32 if m.float32 and both_f32 else torch.float64
    x, restore = as_batch(ms, "ms", float_dtype=compute)
    p, _ = as_batch(pan, "pan", float_dtype=compute)
    p = p.to(x.device)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 2:
        raise ValueError(f"ratio must be an integer >= 2, got {ratio!r}")
    if p.shape[1] != 1:
        raise ValueError(f"pan must have one band, got {p.shape[1]}")
    if p.shape[0] != x.shape[0] or tuple(p.shape[-2:]) != (x.shape[-2] * ratio,
                                                          x.shape[-1] * ratio):
        raise ValueError(f"pan {tuple(p.shape)} must be {ratio}x the size of ms "
                         f"{tuple(x.shape)} (same batch size); crop or resample the inputs")
    for name, t in (("ms", x), ("pan", p)):
        lo, hi = torch.aminmax(t.flatten(-2), dim=-1)    # one pass; NaN and inf show up here
        if not bool((torch.isfinite(lo) & torch.isfinite(hi)).all()):
            raise ValueError(f"{name} contains NaN or inf; fill or mask those pixels first")
        const = hi == lo
        if const.any():
            bands = sorted({int(c) for c in torch.nonzero(const)[:, 1]})
            raise ValueError(f"{name} band(s) {bands} are constant: nothing to fuse (a nodata "
                             "tile, or the wrong band?); drop them or pick another window")
    s = sensor_for_bands(sensor, x.shape[1])
    out = m.fn(x, p, s, ratio, **options)
    return restore(out)
