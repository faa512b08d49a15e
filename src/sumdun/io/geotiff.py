"""GeoTIFF MS + PAN pairs: checks, window mapping by bounds, reading and atomic writing."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._deps import require
from ..sensors import Sensor, get_sensor
from .atomic import atomic_path
from .scene import SceneError, ScenePair

__all__ = ["open_raster", "check_pair", "aligned_ms", "pan_window_to_ms_window",
           "read_geotiff_pair", "write_geotiff"]

_RATIO_TOL = 1e-3  # relative tolerance on the pixel-size ratio
#: PAN pixels a scene may claim (2**36, 69 gigapixels: four times a 35 000 x 500 000 px strip,
#: far above any real product; 137 GB per band at 16 bits). A header claiming more is a
#: corrupt or hostile file, refused before any tile is read.
MAX_SCENE_PIXELS = 2 ** 36


def open_raster(path: str | os.PathLike, role: str = "raster"):
    """Open a raster with rasterio, turning failures into errors that say what to do."""
    rasterio = require("rasterio")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{role} file not found: {p}")
    try:
        return rasterio.open(p)
    except rasterio.errors.RasterioIOError as err:
        raise SceneError(f"cannot read the {role} file {p} as a raster ({err}); is it a "
                         "complete GeoTIFF? Re-export or re-download it.") from err


#: a pixel-size ratio this close to the integer ratio (relative) is a resampled product: its MS
#: is resampled onto the PAN grid coarsened ``ratio`` times (:func:`aligned_ms`)
RESAMPLE_TOL = 0.02


def aligned_ms(ms_ds, pan_ds, ratio: int):
    """``(ms, note)``: ``ms_ds`` itself and None when its pixels are ``ratio`` PAN pixels (within
    1e-3); when the ratio is near it but not exact (within :data:`RESAMPLE_TOL`: a resampled
    product, e.g. MS 2 m on PAN 0.498 x 0.501 m whose grid starts 0.75 m east), a cubic
    ``WarpedVRT`` of the MS on the PAN grid coarsened ``ratio`` times over the ground both
    cover, as ``gdal_pansharpen`` adjusts the MS, and a note stating the residual. Pairs that
    fit neither (other CRS, rotated, a ratio far off) come back unchanged for
    :func:`check_pair` to refuse with its message. The caller closes a returned VRT."""
    if ms_ds.crs != pan_ds.crs or ms_ds.transform.b or ms_ds.transform.d \
            or pan_ds.transform.b or pan_ds.transform.d or pan_ds.count != 1:
        return ms_ds, None
    (mx, my), (px, py) = _res(ms_ds), _res(pan_ds)
    rx, ry = mx / px, my / py
    exact = all(abs(r - ratio) <= _RATIO_TOL * ratio for r in (rx, ry))
    near = all(abs(r - ratio) <= RESAMPLE_TOL * ratio for r in (rx, ry))
    if exact or not near:
        return ms_ds, None
    require("rasterio")
    from rasterio.enums import Resampling
    from rasterio.transform import Affine
    from rasterio.vrt import WarpedVRT

    pt, mb = pan_ds.transform, ms_ds.bounds
    # PAN pixels whose whole footprint lies inside the MS extent, in whole MS' pixels
    c0 = max(0, math.ceil((mb.left - pt.c) / pt.a - 1e-6))
    r0 = max(0, math.ceil((pt.f - mb.top) / -pt.e - 1e-6))
    c1 = min(pan_ds.width, math.floor((mb.right - pt.c) / pt.a + 1e-6))
    r1 = min(pan_ds.height, math.floor((pt.f - mb.bottom) / -pt.e + 1e-6))
    w, h = (c1 - c0) // ratio, (r1 - r0) // ratio
    if w < 1 or h < 1:
        return ms_ds, None  # check_pair / _common_windows say what is wrong
    transform = Affine(pt.a * ratio, 0.0, pt.c + c0 * pt.a, 0.0, pt.e * ratio, pt.f + r0 * pt.e)
    vrt = WarpedVRT(ms_ds, crs=ms_ds.crs, transform=transform, width=w, height=h,
                    resampling=Resampling.cubic, src_nodata=ms_ds.nodata,
                    nodata=ms_ds.nodata)
    dx = (transform.c - ms_ds.transform.c) / mx
    dy = (transform.f - ms_ds.transform.f) / -my
    note = (f"the MS pixel size is {rx:.4g} x {ry:.4g} PAN pixels, not exactly {ratio} (a "
            f"resampled product): the MS was resampled (cubic) onto the PAN grid coarsened "
            f"{ratio}x, its grid {dx:+.3g} x {dy:+.3g} MS pixels from the file's, as "
            "gdal_pansharpen does; pass an MS on an exact grid to avoid the resampling")
    return vrt, note


def _res(ds) -> tuple[float, float]:
    t = ds.transform
    if t.b != 0 or t.d != 0:
        raise SceneError(f"{ds.name} has a rotated geotransform; warp it to a north-up grid "
                         "first (gdalwarp)")
    return abs(t.a), abs(t.e)


def _georeferenced(ds) -> bool:
    return ds.crs is not None or not ds.transform.is_identity


def check_pair(ms_ds, pan_ds, sensor: str | Sensor | None = None, ratio: int = 4,
               ms_bands: int | None = None) -> Sensor:
    """Check that two open rasters form an MS + PAN pair; return the sensor entry.

    Checks: PAN has one band; the CRS are equal (or both absent); the MS/PAN pixel-size ratio
    is ``ratio`` (relative tolerance 1e-3) on both axes; the extents overlap; the MS band count
    fits ``sensor`` (generic when None). Raises :class:`SceneError` naming the problem and fix.
    """
    if pan_ds.count != 1:
        raise SceneError(f"PAN file {pan_ds.name} has {pan_ds.count} bands, expected 1: pass "
                         "the panchromatic image as PAN (are MS and PAN swapped?)")
    for role, ds, most in (("MS", ms_ds, MAX_SCENE_PIXELS // ratio ** 2),
                           ("PAN", pan_ds, MAX_SCENE_PIXELS)):
        if ds.width * ds.height > most:
            raise SceneError(f"{role} file {ds.name} claims {ds.width:,} x {ds.height:,} "
                             f"pixels, more than any real product ({most:,}); the header is "
                             "corrupt, or fuse a window of it (gdal_translate -srcwin)")
    for role, ds in (("MS", ms_ds), ("PAN", pan_ds)):
        if not _georeferenced(ds):
            raise SceneError(f"{role} file {ds.name} has no georeferencing (no CRS, no "
                             "geotransform), so MS and PAN cannot be matched on the ground; "
                             "add it (gdal_translate -a_srs EPSG:... -a_ullr ...) or fuse the "
                             "arrays with sumdun.fuse(ms, pan)")
    if (ms_ds.crs is None) != (pan_ds.crs is None) or (ms_ds.crs and ms_ds.crs != pan_ds.crs):
        raise SceneError(f"MS and PAN CRS differ ({ms_ds.crs} vs {pan_ds.crs}); reproject one "
                         "onto the other's CRS first, e.g. gdalwarp -t_srs <PAN CRS>")
    (mx, my), (px, py) = _res(ms_ds), _res(pan_ds)
    rx, ry = mx / px, my / py
    for r in (rx, ry):
        if abs(r - ratio) > _RATIO_TOL * ratio:
            guess = round(rx)
            # suggest a --ratio only where it would then work (aligned_ms resamples within
            # RESAMPLE_TOL of the integer)
            hint = (f"pass --ratio {guess} if that is the sensor's ratio, or " if guess >= 2
                    and guess != ratio and all(abs(q - guess) <= RESAMPLE_TOL * guess
                                               for q in (rx, ry)) else "")
            raise SceneError(
                f"MS/PAN pixel-size ratio is {rx:.4g} x {ry:.4g} (MS {mx:g}, PAN {px:g}), "
                f"expected the integer {ratio}; {hint}resample the MS to exactly {ratio}x "
                "the PAN pixel size (gdalwarp -tr)")
    mb, pb = ms_ds.bounds, pan_ds.bounds
    if min(mb.right, pb.right) <= max(mb.left, pb.left) or \
            min(mb.top, pb.top) <= max(mb.bottom, pb.bottom):
        raise SceneError(f"MS extent {tuple(mb)} and PAN extent {tuple(pb)} do not overlap; "
                         "are these files of the same scene?")
    s = get_sensor("generic" if sensor is None else sensor)
    try:
        s.gains_for(ms_ds.count if ms_bands is None else ms_bands)
    except ValueError as err:
        raise SceneError(f"MS file {ms_ds.name}: {err}") from err
    return s


def pan_window_to_ms_window(pan_window, pan_transform, ms_transform):
    """The MS window covering the same ground as ``pan_window`` (mapped by bounds).

    Offsets and sizes are floats when the PAN window does not fall on MS pixel edges; round
    them (``.round_offsets().round_lengths()``) or read ``boundless`` as the use requires.
    """
    windows = require("rasterio.windows")
    bounds = windows.bounds(pan_window, pan_transform)
    return windows.from_bounds(*bounds, transform=ms_transform)


def _common_windows(ms_ds, pan_ds, ratio: int):
    """Integer MS window and PAN window (ratio x larger) covering the extents' overlap."""
    windows = require("rasterio.windows")
    mb, pb = ms_ds.bounds, pan_ds.bounds
    bounds = (max(mb.left, pb.left), max(mb.bottom, pb.bottom),
              min(mb.right, pb.right), min(mb.top, pb.top))
    mw = windows.from_bounds(*bounds, transform=ms_ds.transform)
    # whole MS pixels inside the overlap
    c0, r0 = math.ceil(mw.col_off - 1e-6), math.ceil(mw.row_off - 1e-6)
    c1 = math.floor(mw.col_off + mw.width + 1e-6)
    r1 = math.floor(mw.row_off + mw.height + 1e-6)
    ms_win = windows.Window(c0, r0, c1 - c0, r1 - r0)
    pw = pan_window_to_ms_window(ms_win, ms_ds.transform, pan_ds.transform)
    # round() takes a half to the even integer: a Landsat-like PAN grid half a PAN pixel west
    # and north of the MS's (offset ratio c + 0.5) snaps to ratio c, where each MS pixel's
    # centre falls on PAN pixel ratio i + ratio/2, the toolbox's phase (round-half-up would be
    # a whole PAN pixel off; test_io.test_landsat_grid_snaps_to_the_toolbox_phase)
    pc, pr = round(pw.col_off), round(pw.row_off)
    shift = max(abs(pw.col_off - pc), abs(pw.row_off - pr))
    pan_win = windows.Window(pc, pr, ms_win.width * ratio, ms_win.height * ratio)
    if pc < 0 or pr < 0 or pc + pan_win.width > pan_ds.width or pr + pan_win.height > pan_ds.height:
        # PAN one pixel short at an edge: drop the last MS row/column
        w = min(ms_win.width, (pan_ds.width - pc) // ratio)
        h = min(ms_win.height, (pan_ds.height - pr) // ratio)
        ms_win = windows.Window(c0, r0, w, h)
        pan_win = windows.Window(pc, pr, w * ratio, h * ratio)
    if ms_win.width < 1 or ms_win.height < 1:
        raise SceneError("MS and PAN overlap by less than one MS pixel")
    return ms_win, pan_win, shift


def _read(ds, window, role: str) -> np.ndarray:
    rasterio = require("rasterio")
    try:
        return ds.read(window=window)
    except (rasterio.errors.RasterioIOError, rasterio.errors.RasterioError) as err:
        raise SceneError(f"reading the {role} file {ds.name} failed ({err}); the file is "
                         "truncated or corrupt: re-export or re-download it") from err


def read_geotiff_pair(ms_path: str | os.PathLike, pan_path: str | os.PathLike,
                      sensor: str | Sensor | None = None, ratio: int = 4,
                      nodata: float | None = None) -> ScenePair:
    """Read an MS + PAN GeoTIFF pair over the ground they share.

    The result covers whole MS pixels inside both extents; PAN is exactly ``ratio`` times
    larger. Nodata comes from the files (``nodata`` overrides both when given). The PAN grid's
    offset from the MS pixel edges, in PAN pixels, is kept in ``meta['grid_shift_pan_px']``.
    """
    with open_raster(ms_path, "MS") as ms_ds, open_raster(pan_path, "PAN") as pan_ds:
        s = check_pair(ms_ds, pan_ds, sensor, ratio)
        ms_win, pan_win, shift = _common_windows(ms_ds, pan_ds, ratio)
        ms = _read(ms_ds, ms_win, "MS")
        pan = _read(pan_ds, pan_win, "PAN")
        names = tuple(d for d in ms_ds.descriptions) if all(ms_ds.descriptions) else ()
        return ScenePair(
            ms=ms, pan=pan, sensor=s, ratio=ratio,
            ms_nodata=ms_ds.nodata if nodata is None else nodata,
            pan_nodata=pan_ds.nodata if nodata is None else nodata,
            crs=pan_ds.crs, ms_transform=ms_ds.window_transform(ms_win),
            pan_transform=pan_ds.window_transform(pan_win), band_names=names,
            meta={"ms_path": str(ms_path), "pan_path": str(pan_path),
                  "ms_window": ms_win, "pan_window": pan_win, "grid_shift_pan_px": shift},
        )


def write_geotiff(path: str | os.PathLike, array: np.ndarray, *, crs: Any = None,
                  transform: Any = None, nodata: float | None = None,
                  band_names: Sequence[str] | None = None, dtype: str | None = None,
                  compress: str = "deflate", tiled: bool = True) -> Path:
    """Write ``(C, H, W)`` (or ``(H, W)``) as a tiled, compressed GeoTIFF, atomically.

    The file appears under ``path`` only once complete: it is written to a temporary name in
    the same folder, then renamed; an existing file is replaced only on success.
    """
    rasterio = require("rasterio")
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"array must be (C, H, W) or (H, W), got shape {a.shape}")
    dtype = dtype or a.dtype.name
    profile = dict(driver="GTiff", count=a.shape[0], height=a.shape[1], width=a.shape[2],
                   dtype=dtype, crs=crs, transform=transform, nodata=nodata)
    if compress:
        profile["compress"] = compress
    if tiled and a.shape[1] >= 256 and a.shape[2] >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(a.astype(dtype, copy=False))
            if band_names:
                for i, name in enumerate(band_names, start=1):
                    dst.set_band_description(i, name)
    return Path(path)
