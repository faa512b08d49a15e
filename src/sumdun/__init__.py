"""sumdun: SUM-DUN pansharpening and the toolkit around it.

Modules: :mod:`sumdun.sensors` (sensor table), :mod:`sumdun.degrade` (MTF filters, Wald
protocol, interp23tap), :mod:`sumdun.io` (GeoTIFF / .h5 / .mat scenes, dgsamples).
"""
from __future__ import annotations

from .sensors import SENSORS, Sensor, get_sensor, list_sensors

__version__ = "0.1.0"

__all__ = ["__version__", "SENSORS", "Sensor", "get_sensor", "list_sensors"]
