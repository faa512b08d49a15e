"""What a fusion method is, and the decorator that records one: imports nothing of sumdun, so
method modules depend on it and the registry (:mod:`sumdun.methods.registry`) depends on both,
without a cycle."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["FusionMethod", "register", "REGISTERED"]


@dataclass(frozen=True)
class FusionMethod:
    """A registered method: ``fn(ms, pan, sensor, ratio, **options) -> fused``, tensors
    ``(B, C, h, w)``, ``(B, 1, H, W)`` -> ``(B, C, H, W)``, float64 (or float32 throughout when
    ``float32`` is set and both inputs are float32). ``family``: ``classical`` or ``neural``.
    ``numpy``: ``fn`` also takes numpy arrays and returns one without importing torch, and
    :func:`sumdun.fusion.fuse` gives it numpy inputs as they are. ``zero_ok``: integer options
    whose default is None that also take 0 (others with a None default must be >= 1)."""

    name: str
    description: str
    fn: Callable
    family: str = "classical"
    float32: bool = False
    numpy: bool = False
    zero_ok: tuple = ()


#: every method registered so far, by lower-case name
REGISTERED: dict[str, FusionMethod] = {}


def register(name: str, description: str, family: str = "classical", float32: bool = False,
             numpy: bool = False, zero_ok: tuple = ()):
    """Decorator adding a method under ``name`` (lower case); ``float32``: the method computes
    in float32 when given float32 inputs (else everything is float64); ``numpy``: it also
    computes on numpy arrays, without torch; ``zero_ok``: integer options defaulting to None
    that also take 0."""
    def wrap(fn):
        REGISTERED[name.lower()] = FusionMethod(name.lower(), description, fn, family, float32,
                                                numpy, tuple(zero_ok))
        return fn
    return wrap
