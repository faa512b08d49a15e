"""One registry for every fusion method, classical or neural: ``fuse(ms, pan, method=...)``."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ._tensor import Array, as_batch
from .errors import UsageError
from .sensors import Sensor, sensor_for_bands

__all__ = ["FusionMethod", "register", "list_methods", "get_method", "fuse", "default_method",
           "method_options", "validate_options"]


@dataclass(frozen=True)
class FusionMethod:
    """A registered method: ``fn(ms, pan, sensor, ratio, **options) -> fused``, tensors
    ``(B, C, h, w)``, ``(B, 1, H, W)`` -> ``(B, C, H, W)``, float64 (or float32 throughout when
    ``float32`` is set and both inputs are float32)."""

    name: str
    description: str
    fn: Callable[..., torch.Tensor]
    family: str = "classical"
    float32: bool = False


_REGISTRY: dict[str, FusionMethod] = {}


def register(name: str, description: str, family: str = "classical", float32: bool = False):
    """Decorator adding a method to the registry under ``name`` (lower case); ``float32``: the
    method computes in float32 when given float32 inputs (else everything is float64)."""
    def wrap(fn):
        _REGISTRY[name.lower()] = FusionMethod(name.lower(), description, fn, family, float32)
        return fn
    return wrap


#: Where each built-in method lives: its module registers it when imported, so looking up one
#: method imports only its module (``sumdun fuse --method bt-h`` never loads SciPy's optimisers).
BUILTIN = {"exp": "exp", "bt-h": "brovey", "bdsd": "bdsd", "bdsd-pc": "bdsd", "gsa": "gsa",
           "awlp": "gsa", "c-gsa": "gsa", "mtf-glp": "glp", "mtf-glp-hpm": "glp",
           "mtf-glp-fs": "glp", "pracs": "pracs", "sumdun": "neural"}


def _import(module: str) -> None:
    import importlib

    importlib.import_module(f"sumdun.classical.{module}")


def _load_builtin() -> None:
    for module in sorted(set(BUILTIN.values())):
        _import(module)


def list_methods() -> dict[str, str]:
    """``{name: one-line description}`` of every registered method."""
    _load_builtin()
    return {k: m.description for k, m in sorted(_REGISTRY.items())}


def get_method(name: str) -> FusionMethod:
    key = name.lower().replace("_", "-")
    if key not in _REGISTRY and key in BUILTIN:
        _import(BUILTIN[key])
    if key not in _REGISTRY:
        _load_builtin()
        raise KeyError(f"unknown fusion method {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def default_method() -> str:
    """SUM-DUN when its weights ship, else MTF-GLP-HPM: the default of :func:`fuse` and of
    ``sumdun fuse``."""
    from .weights import available

    return "sumdun" if "sumdun_small" in available() else "mtf-glp-hpm"


_FIXED = ("ms", "pan", "sensor", "ratio")


def method_options(method: str) -> dict[str, inspect.Parameter]:
    """The options a method takes (``name -> inspect.Parameter``, with defaults)."""
    params = inspect.signature(get_method(method).fn).parameters
    return {k: p for k, p in params.items() if k not in _FIXED}


def _kind(p: inspect.Parameter) -> str:
    """The option's type name (``"int | None"``): its annotation, else its default's type."""
    if p.annotation is not inspect.Parameter.empty:
        return p.annotation if isinstance(p.annotation, str) else p.annotation.__name__
    d = p.default
    return "" if d is None or d is inspect.Parameter.empty else type(d).__name__


def validate_options(method: str, options: dict) -> None:
    """Check ``options`` against the method's signature before any work: unknown names, and
    values of the wrong type (an integer option must be positive, or non-negative when its
    default is 0: a seed, a step count that is off by default).
    Raises :class:`~sumdun.errors.UsageError` naming the option, what it takes and the fix."""
    allowed = method_options(method)
    for key, value in options.items():
        if key not in allowed:
            have = ", ".join(sorted(allowed)) or "none"
            raise UsageError(f"method {method!r} has no option {key!r}; its options: {have}")
        kind = _kind(allowed[key])
        if value is None and ("None" in kind or allowed[key].default is None):
            continue
        base = kind.split("|")[0].strip()
        if base == "int":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise UsageError(f"option {key} of {method!r} must be an integer, got {value!r}")
            least = 0 if allowed[key].default == 0 else 1
            if value < least:
                raise UsageError(f"option {key} of {method!r} must be an integer >= {least}, "
                                 f"got {value} (default {allowed[key].default})")
        elif base == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value):
                raise UsageError(f"option {key} of {method!r} must be a number, got {value!r}")


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
