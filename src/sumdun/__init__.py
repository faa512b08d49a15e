"""sumdun: SUM-DUN pansharpening and the toolkit around it.

Modules: :mod:`sumdun.sensors` (sensor table), :mod:`sumdun.degrade` (MTF filters, Wald
protocol, interp23tap), :mod:`sumdun.io` (GeoTIFF / .h5 / .mat scenes, dgsamples),
:mod:`sumdun.fusion` (``fuse``, the method registry), :mod:`sumdun.scene_fusion`
(``fuse_geotiff``: tiled GeoTIFF fusion).
"""
from __future__ import annotations

from .sensors import SENSORS, Sensor, get_sensor, list_sensors

__version__ = "0.1.0"

__all__ = ["__version__", "SENSORS", "Sensor", "get_sensor", "list_sensors", "fuse",
           "list_methods", "fuse_geotiff"]

_LAZY = {"fuse": "fusion", "list_methods": "fusion", "fuse_geotiff": "scene_fusion"}


def __getattr__(name: str):
    """``sumdun.fuse``, ``sumdun.list_methods``, ``sumdun.fuse_geotiff`` (torch loads on use)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'sumdun' has no attribute {name!r}")
