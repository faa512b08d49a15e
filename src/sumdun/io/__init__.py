"""Scene I/O: GeoTIFF pairs, PanCollection .h5, toolbox .mat, and the dgsamples scenes."""
from __future__ import annotations

import os
from pathlib import Path

from ..sensors import Sensor
from .atomic import atomic_path
from .geotiff import (check_pair, open_raster, pan_window_to_ms_window, read_geotiff_pair,
                      write_geotiff)
from .h5 import PANCOLLECTION_KEYS, read_h5, read_h5_pair, write_h5
from .mat import read_mat, read_mat_pair
from .samples import list_samples, load_sample, sample_paths
from .scene import SceneError, ScenePair

__all__ = [
    "ScenePair", "SceneError", "atomic_path", "check_pair", "open_raster",
    "pan_window_to_ms_window", "read_geotiff_pair", "write_geotiff", "PANCOLLECTION_KEYS",
    "read_h5", "read_h5_pair", "write_h5", "read_mat", "read_mat_pair", "list_samples",
    "load_sample", "sample_paths", "read_pair",
]


def read_pair(ms: str | os.PathLike, pan: str | os.PathLike | None = None,
              sensor: str | Sensor | None = None, ratio: int = 4, index: int = 0) -> ScenePair:
    """Read an MS + PAN pair from any supported source, chosen by file extension.

    ``read_pair("ms.tif", "pan.tif")`` (GeoTIFF), ``read_pair("test.h5", index=3)``
    (PanCollection), ``read_pair("scene.mat")`` (toolbox), or ``read_pair("wv3")`` for a
    dgsamples scene.
    """
    p = Path(ms)
    ext = p.suffix.lower()
    if pan is None and not p.exists() and str(ms).lower() in list_samples():
        return load_sample(str(ms))
    if ext in (".tif", ".tiff"):
        if pan is None:
            raise ValueError("a GeoTIFF MS file needs its PAN file: read_pair(ms_tif, pan_tif)")
        return read_geotiff_pair(ms, pan, sensor, ratio)
    if ext in (".h5", ".hdf5"):
        return read_h5_pair(ms, index, sensor, ratio)
    if ext == ".mat":
        return read_mat_pair(ms, sensor, ratio)
    raise ValueError(f"unsupported file type {ext!r} for {ms}: use .tif/.tiff, .h5 or .mat, "
                     f"or a sample name ({', '.join(list_samples())})")
