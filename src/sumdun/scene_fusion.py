"""Fuse a GeoTIFF MS + PAN scene of any size tile by tile: ``sumdun fuse MS.tif PAN.tif OUT.tif``.

The output lies on the PAN grid over the ground both inputs share (whole MS pixels), with the
PAN's CRS and the transform of that window, the MS dtype (or float32), the MS band
descriptions, and nodata where either input is nodata. Tiles of ``tile`` PAN pixels are read
with ``overlap`` pixels of real context on every inner side and blended with feathered weights
(:mod:`sumdun.tiling`); memory is bounded by the tile size and one ``2 * overlap`` strip across
the scene width, not by the scene size.

Tile-local vs per-tile statistics: EXP is purely local, so tiling reproduces the untiled
result away from tile edges. Methods that estimate gains or regressions over the image (BT-H,
GSA, C-GSA (its segmentation too), AWLP, BDSD, BDSD-PC, PRACS, MTF-GLP, MTF-GLP-HPM,
MTF-GLP-FS) estimate them per tile, and SUM-DUN's channel attention and band weights (and
its BT-H initial estimate) see the whole tile: their tiles are consistent where the
scene is homogeneous and blended without seams where it is not. Use a larger ``tile`` for
statistics closer to the scene's.
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._deps import require
from .io.atomic import atomic_path
from .io.geotiff import _common_windows, check_pair, open_raster
from .io.scene import SceneError
from .tiling import TileBlender, axis_tiles

__all__ = ["fuse_geotiff"]


#: GDAL block cache while fusing (bytes = this x 2**20), so memory does not grow with the scene
GDAL_CACHE_MB = 64


def _default_method() -> str:
    from .fusion import list_methods

    return "sumdun" if "sumdun" in list_methods() else "mtf-glp-hpm"


def _sensor_band_names(sensor, bands: int) -> list[str] | None:
    """The sensor table's band names for ``bands`` bands (B, G, R, NIR for the 4-band subset
    of an 8-band sensor); None when they do not apply."""
    if len(sensor.band_names) == bands:
        return list(sensor.band_names)
    if bands == 4 and len(sensor.band_names) == 8:
        try:
            return [sensor.band_names[i] for i in sensor.subset4()]
        except ValueError:
            return None
    return None


def _block_size(tile: int) -> int:
    for b in (512, 256, 128, 64, 32, 16):
        if tile % b == 0:
            return b
    raise AssertionError("tile is a multiple of 16")


def _check_tiling(tile: int, overlap: int, ratio: int) -> None:
    step = 16 * ratio // math.gcd(16, ratio)
    if tile < 64 or tile % step:
        raise ValueError(f"tile must be a multiple of {step} PAN pixels (16 and the ratio "
                         f"{ratio}), at least 64; got {tile}. Try 512.")
    if overlap < 0 or overlap % ratio:
        raise ValueError(f"overlap must be a multiple of the ratio {ratio} (PAN pixels), got "
                         f"{overlap}. Try 32.")


def _overview(ds, window, bands: int, max_side: int) -> np.ndarray:
    """The window read averaged down so its longer side is at most ``max_side`` pixels."""
    f = max(1, math.ceil(max(window.height, window.width) / max_side))
    shape = (bands, max(1, int(window.height) // f), max(1, int(window.width) // f))
    resampling = require("rasterio.enums").Resampling
    return ds.read(window=window, out_shape=shape, resampling=resampling.average)


def _scene_prompt(ms_ds, pan_ds, ms_win, pan_win, sensor, ratio, describer) -> str:
    """One description of the whole scene, from an overview (MS at most 512 px a side)."""
    ms = _overview(ms_ds, ms_win, ms_ds.count, 512).astype(np.float64)
    h, w = ms.shape[1:]
    pan = _overview(pan_ds, pan_win, 1, 512 * ratio)
    pan = pan[:, : h * ratio, : w * ratio].astype(np.float64)
    if pan.shape[1:] != (h * ratio, w * ratio):  # overview rounding: resample PAN to fit
        from scipy.ndimage import zoom

        pan = zoom(pan, (1, h * ratio / pan.shape[1], w * ratio / pan.shape[2]), order=1)
    return describer.describe(ms, pan, sensor, ratio)


def _cast(block: np.ndarray, invalid: np.ndarray, dtype: np.dtype, nodata) -> np.ndarray:
    """Round and clip to ``dtype``; valid pixels that would equal nodata move one step off it."""
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        out = np.clip(np.rint(block), info.min, info.max).astype(dtype)
    else:
        out = block.astype(dtype)
    if nodata is not None:
        if not np.isnan(nodata):
            bump = 1 if dtype.kind in "ui" and nodata < np.iinfo(dtype).max else -1
            clash = (out == nodata) & ~invalid[None]
            if dtype.kind in "ui":
                out[clash] = out[clash] + bump
            else:
                out[clash] = np.nextafter(out[clash], np.inf)
        out[:, invalid] = nodata
    return out


def fuse_geotiff(ms_path: str | os.PathLike, pan_path: str | os.PathLike,
                 out_path: str | os.PathLike, method: str | None = None,
                 sensor: str | None = None, ratio: int = 4, *, tile: int = 512,
                 overlap: int = 32, prompt: str | None = None, describer: str = "stats",
                 prompt_scope: str = "scene", device: str = "cpu", dtype: str | None = None,
                 nodata: float | None = None, cog: bool = False, compress: str = "deflate",
                 progress: bool = True, describer_options: dict | None = None,
                 crop_to_overlap: bool = False,
                 **options: Any) -> Path:
    """Pansharpen a GeoTIFF pair tile by tile and write a georeferenced GeoTIFF.

    Args:
        ms_path, pan_path: MS (C bands) and PAN (1 band) GeoTIFFs, same CRS, pixel-size ratio
            ``ratio``, overlapping extents.
        out_path: output GeoTIFF; replaced only when the new file is complete.
        method: a registry name (:func:`sumdun.fusion.list_methods`); ``sumdun`` when its
            weights ship, else ``mtf-glp-hpm``.
        sensor: sensor name for MTF gains and bit depth; generic when None.
        tile, overlap: tile core and context in PAN pixels (tile a multiple of 16 and of the
            ratio, overlap a multiple of the ratio and at most tile / 4).
        prompt: SUM-DUN only: a fixed text prompt; otherwise ``describer`` (``stats`` or
            ``mllm``) writes one per scene (from an overview) or per tile (``prompt_scope``).
        device: SUM-DUN's device (``cpu`` or ``cuda``); classical methods run on the CPU.
        dtype: output dtype; the MS dtype by default (rounded and clipped), e.g. ``float32``.
        nodata: overrides both inputs' nodata value (0 for the dgsamples scenes).
        cog: write a Cloud-Optimised GeoTIFF (with overviews) instead of a tiled GeoTIFF.
        crop_to_overlap: fuse only the ground both inputs cover when their extents differ by
            more than one MS pixel (an error otherwise, so a mismatched pair is not
            silently cropped).
        **options: method options (toolbox defaults otherwise).

    Returns:
        The output path.
    """
    rasterio = require("rasterio")
    from .fusion import fuse, get_method

    method = method or _default_method()
    m = get_method(method)
    # float32 tiles for methods that compute in float32 (half the memory; the output is
    # rounded to the MS dtype or kept as float32 anyway), float64 for the others
    work_dtype = np.float32 if m.float32 else np.float64
    _check_tiling(tile, overlap, ratio)
    if prompt_scope not in ("scene", "tile"):
        raise ValueError(f"prompt_scope must be 'scene' or 'tile', got {prompt_scope!r}")
    out_path = Path(out_path)
    for src in (ms_path, pan_path):
        if Path(src).exists() and out_path.exists() and out_path.samefile(src):
            raise ValueError(f"the output {out_path} is one of the inputs; choose another name")
    with open_raster(ms_path, "MS") as ms_ds, open_raster(pan_path, "PAN") as pan_ds:
        s = check_pair(ms_ds, pan_ds, sensor, ratio)
        ms_win, pan_win, _ = _common_windows(ms_ds, pan_ds, ratio)
        lost_ms = (ms_ds.height - ms_win.height, ms_ds.width - ms_win.width)
        lost_pan = (pan_ds.height - pan_win.height, pan_ds.width - pan_win.width)
        if not crop_to_overlap and (max(lost_ms) > 2 or max(lost_pan) > 2 * ratio):
            raise SceneError(
                f"MS and PAN only partly overlap: the shared ground is MS {int(ms_win.width)} x "
                f"{int(ms_win.height)} of {ms_ds.width} x {ms_ds.height} px and PAN "
                f"{int(pan_win.width)} x {int(pan_win.height)} of {pan_ds.width} x "
                f"{pan_ds.height} px; check that the files belong together, or pass "
                "--crop-to-overlap (crop_to_overlap=True) to fuse the shared part only")
        bands = ms_ds.count
        ms_nd = ms_ds.nodata if nodata is None else nodata
        pan_nd = pan_ds.nodata if nodata is None else nodata
        out_nd = ms_nd if ms_nd is not None else pan_nd
        out_dtype = np.dtype(dtype or ms_ds.dtypes[0])
        if out_nd is not None and out_dtype.kind in "ui":
            info = np.iinfo(out_dtype)
            if np.isnan(out_nd) or not (info.min <= out_nd <= info.max) \
                    or out_nd != int(out_nd):
                raise ValueError(f"nodata {out_nd} does not fit the output dtype {out_dtype}; "
                                 "pass dtype='float32' or another nodata")
        names = list(ms_ds.descriptions) if all(ms_ds.descriptions) else None
        if names is None and sensor is not None:  # the sensor's names when the file has none
            names = _sensor_band_names(s, bands)
        H, W = int(pan_win.height), int(pan_win.width)
        rows, cols = axis_tiles(H, tile, overlap), axis_tiles(W, tile, overlap)
        blender = TileBlender(rows, cols, bands)

        if m.family == "neural":
            options.setdefault("device", device)
            if prompt is not None:
                options["prompt"] = prompt
            elif prompt_scope == "scene":
                from .prompts import get_describer

                d = get_describer(describer, **(describer_options or {}))
                options["prompt"] = _scene_prompt(ms_ds, pan_ds, ms_win, pan_win, s, ratio, d)
        elif prompt is not None:
            raise ValueError(f"--prompt applies to SUM-DUN only, not to {method!r}")
        tile_describer = None
        if m.family == "neural" and prompt is None and prompt_scope == "tile" \
                and describer != "stats":
            from .prompts import get_describer

            tile_describer = get_describer(describer, **(describer_options or {}))

        block = _block_size(tile)
        profile = dict(driver="GTiff", count=bands, height=H, width=W, dtype=out_dtype.name,
                       crs=pan_ds.crs, transform=pan_ds.window_transform(pan_win),
                       nodata=out_nd, BIGTIFF="IF_SAFER")
        if compress:
            profile["compress"] = compress
        if H >= block and W >= block:
            profile.update(tiled=True, blockxsize=block, blockysize=block)

        windows = require("rasterio.windows")
        tqdm = require("tqdm").tqdm
        bar = tqdm(total=len(rows) * len(cols), unit="tile", disable=not progress,
                   desc=f"fuse {method} {W}x{H}")
        with contextlib.ExitStack() as stack:
            # GDAL's block cache defaults to 5% of RAM and would grow with the scene
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20))
            final_tmp = stack.enter_context(atomic_path(out_path))
            if cog:
                fd, work = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".work.tif",
                                            dir=out_path.parent)
                os.close(fd)
                work = Path(work)
                stack.callback(work.unlink, missing_ok=True)
            else:
                work = final_tmp
            with rasterio.open(work, "w", **profile) as dst:
                if names:
                    for k, name in enumerate(names, start=1):
                        dst.set_band_description(k, name)
                for i, j in blender.tiles():
                    (r0, r1), (c0, c1) = rows.read(i), cols.read(j)
                    pw = windows.Window(pan_win.col_off + c0, pan_win.row_off + r0,
                                        c1 - c0, r1 - r0)
                    mw = windows.Window(ms_win.col_off + c0 // ratio,
                                        ms_win.row_off + r0 // ratio,
                                        (c1 - c0) // ratio, (r1 - r0) // ratio)
                    try:
                        ms = ms_ds.read(window=mw)
                        pan = pan_ds.read(window=pw)
                    except rasterio.errors.RasterioError as err:
                        raise SceneError(f"reading tile rows {r0}:{r1}, cols {c0}:{c1} failed "
                                         f"({err}); the file is truncated or corrupt: "
                                         "re-export or re-download it") from err
                    invalid = np.zeros(pan.shape[1:], bool)
                    if ms_nd is not None:
                        bad = (ms == ms_nd).any(0) if not np.isnan(ms_nd) else \
                            np.isnan(ms).any(0)
                        invalid |= np.repeat(np.repeat(bad, ratio, 0), ratio, 1)
                    if pan_nd is not None:
                        invalid |= (pan[0] == pan_nd) if not np.isnan(pan_nd) else \
                            np.isnan(pan[0])
                    if invalid.all():
                        fused = np.zeros((bands, r1 - r0, c1 - c0), np.float32)
                    else:
                        opts = dict(options)
                        if tile_describer is not None:
                            opts["prompt"] = tile_describer.describe(
                                ms.astype(np.float64), pan.astype(np.float64), s, ratio)
                        try:
                            fused = fuse(ms.astype(work_dtype), pan.astype(work_dtype),
                                         method=method, sensor=s, ratio=ratio, **opts)
                        except ValueError as err:
                            raise SceneError(f"tile at PAN rows {r0}:{r1}, cols {c0}:{c1}: "
                                             f"{err}") from err
                    (h0, h1, w0, w1), out = blender.add(i, j, np.asarray(fused, np.float32))
                    inv = invalid[h0 - r0: h1 - r0, w0 - c0: w1 - c0]
                    dst.write(_cast(out, inv, out_dtype, out_nd),
                              window=windows.Window(w0, h0, w1 - w0, h1 - h0))
                    bar.update(1)
            bar.close()
            if cog:
                require("rasterio.shutil").copy(work, final_tmp, driver="COG",
                                                compress=compress or "NONE", BIGTIFF="IF_SAFER")
    return out_path
