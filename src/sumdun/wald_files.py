"""Wald degradation of GeoTIFF scene pairs (the ``sumdun degrade`` command)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .degrade import wald
from .io import read_geotiff_pair, write_geotiff
from .sensors import Sensor

__all__ = ["block_all", "degrade_files", "cast_to"]


def block_all(mask: np.ndarray, ratio: int) -> np.ndarray:
    """``(H, W)`` bool -> ``(H/ratio, W/ratio)``: True where the whole ratio x ratio block is."""
    h, w = mask.shape[0] // ratio, mask.shape[1] // ratio
    return mask[: h * ratio, : w * ratio].reshape(h, ratio, w, ratio).all(axis=(1, 3))


def cast_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """Cast floats to ``dtype``; integer types are rounded and clipped to their range."""
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return np.clip(np.rint(a), info.min, info.max).astype(dt)
    return a.astype(dt)


def degrade_files(ms_path: str | os.PathLike, pan_path: str | os.PathLike,
                  outdir: str | os.PathLike, sensor: str | Sensor | None = None, ratio: int = 4,
                  pan_reduction: str = "imresize", dtype: str = "float32") -> list[Path]:
    """Write the reduced-resolution pair of a GeoTIFF scene: ``ms_lr.tif``, ``pan_lr.tif`` and
    the reference ``gt.tif`` (the original MS), georeferenced on their new grids.

    MS and PAN are cropped to whole multiples of ``ratio`` MS pixels first. A reduced pixel is
    nodata when any pixel of its ratio x ratio source block is nodata.
    """
    pair = read_geotiff_pair(ms_path, pan_path, sensor, ratio)
    h, w = (s // ratio * ratio for s in pair.ms.shape[1:])
    if h == 0 or w == 0:
        raise ValueError(f"the MS image ({pair.ms.shape[1]} x {pair.ms.shape[2]}) is smaller "
                         f"than the ratio {ratio}: nothing to degrade")
    gt = pair.ms[:, :h, :w].astype(np.float64)
    pan = pair.pan[:, : h * ratio, : w * ratio].astype(np.float64)
    ms_lr, pan_lr = wald(gt, pan, pair.sensor, ratio, pan_reduction=pan_reduction)
    ms_ok = block_all(pair.ms_valid[:h, :w], ratio)
    pan_ok = block_all(pair.pan_valid[: h * ratio, : w * ratio], ratio)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    lr_transform = pair.ms_transform @ pair.ms_transform.scale(ratio, ratio)
    files = []
    for name, arr, ok, nodata, transform in (
        ("ms_lr.tif", ms_lr, ms_ok, pair.ms_nodata, lr_transform),
        ("pan_lr.tif", pan_lr, pan_ok, pair.pan_nodata, pair.ms_transform),
        ("gt.tif", gt, pair.ms_valid[:h, :w], pair.ms_nodata, pair.ms_transform),
    ):
        arr = cast_to(arr, dtype)
        if nodata is not None:
            arr[:, ~ok] = nodata
        names = pair.band_names if arr.shape[0] == len(pair.band_names) else ("pan",)
        files.append(write_geotiff(out / name, arr, crs=pair.crs, transform=transform,
                                   nodata=nodata, band_names=names))
    return files
