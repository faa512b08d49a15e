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
its BT-H initial estimate and ``detail_gain`` calibration) see the whole tile: their tiles are consistent where the
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
from .io.geotiff import _common_windows, aligned_ms, check_pair, open_raster
from .errors import DataError, UsageError
from .io.scene import SceneError
from .io.writer import BackgroundWriter
from .tiling import TileBlender, axis_tiles

__all__ = ["fuse_geotiff", "join_strips", "scene_grid"]


#: GDAL block cache while fusing (bytes = this x 2**20), so memory does not grow with the scene
GDAL_CACHE_MB = 64


def _sensor_band_names(sensor, bands: int) -> list[str] | None:
    """The sensor table's band names for ``bands`` bands (B, G, R, NIR for the 4-band subset
    of an 8-band sensor); None when they do not apply."""
    if len(sensor.band_names) == bands:
        return list(sensor.band_names)
    if bands == 4 and len(sensor.band_names) == 8:
        try:
            return [sensor.band_names[i] for i in sensor.subset4]
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
        good = max(step * math.ceil(64 / step), step * round(tile / step))
        raise UsageError(f"tile must be a multiple of {step} PAN pixels (16 and the ratio "
                         f"{ratio}), at least 64; got {tile}. Try {good}.")
    if overlap < 0 or overlap % ratio or overlap > tile // 4:
        good = min(ratio * round(32 / ratio), ratio * (tile // 4 // ratio))
        raise UsageError(f"overlap must be a multiple of the ratio {ratio} (PAN pixels) from 0 "
                         f"to tile/4 = {tile // 4}, got {overlap}. Try {good}.")


def _overview(ds, window, bands: int, max_side: int) -> np.ndarray:
    """The window read averaged down so its longer side is at most ``max_side`` pixels."""
    f = max(1, math.ceil(max(window.height, window.width) / max_side))
    shape = (bands, max(1, int(window.height) // f), max(1, int(window.width) // f))
    resampling = require("rasterio.enums").Resampling
    return ds.read(window=window, out_shape=shape, resampling=resampling.average)


def _scene_prompt(ms_ds, pan_ds, ms_win, pan_win, sensor, ratio, describer, bands,
                  ms_nodata=None, pan_nodata=None) -> str:
    """One description of the whole scene, from an overview (MS at most 512 px a side)."""
    ms = _overview(ms_ds, ms_win, ms_ds.count, 512).astype(np.float64)[[b - 1 for b in bands]]
    h, w = ms.shape[1:]
    pan = _overview(pan_ds, pan_win, 1, 512 * ratio)
    pan = pan[:, : h * ratio, : w * ratio].astype(np.float64)
    for a, nd in ((ms, ms_nodata), (pan, pan_nodata)):  # the describer leaves 0 out
        a[~np.isfinite(a)] = 0
        if nd is not None and np.isfinite(nd):
            a[a == nd] = 0
    if pan.shape[1:] != (h * ratio, w * ratio):  # overview rounding: resample PAN to fit
        from scipy.ndimage import zoom

        pan = zoom(pan, (1, h * ratio / pan.shape[1], w * ratio / pan.shape[2]), order=1)
    meta = {}
    if pan_ds.crs is not None and pan_ds.crs.is_projected:  # of the overview's pixels
        meta["gsd_m"] = abs(pan_ds.transform.a) * float(pan_win.width) / pan.shape[2]
    from .io.extra import geometry_from_tags, read_imd

    src = getattr(ms_ds, "src_dataset", ms_ds)  # the file behind a resampling WarpedVRT
    meta.update(geometry_from_tags(src.tags()))  # GeoTIFF tags, then a DigitalGlobe .IMD
    imd = _imd_beside(src.name)
    if imd is not None:
        meta.update(read_imd(imd))
    return describer.describe(ms, pan, sensor, ratio, meta=meta)


#: largest window (PAN pixels a side) a scene is adapted on: memory as bounded as one tile's
ADAPT_WINDOW = 1024


def _adapt_on_window(ms_ds, pan_ds, ms_win, pan_win, band_idx, sensor, ratio, options,
                     progress, stack) -> dict:
    """Adapt SUM-DUN on the central window of the scene (at most :data:`ADAPT_WINDOW` pixels a
    side on the network's grid: PAN pixels, or half as many for a ratio-2 pair fused on a grid
    twice as fine) and return the options that fuse every tile with the adapted weights."""
    import torch

    from .methods.neural.sumdun import finer_pan, grid_factor, prepare

    windows = require("rasterio.windows")
    opts = dict(options)
    # a ratio-2 pair is adapted (and fused) on the network's grid, k = 2 times finer
    k = grid_factor(ratio, opts.get("weights", "sumdun_small"), opts.get("device", "cpu"))
    side = min(ADAPT_WINDOW // (ratio * k), int(ms_win.height), int(ms_win.width))
    r0 = int(ms_win.row_off) + (int(ms_win.height) - side) // 2
    c0 = int(ms_win.col_off) + (int(ms_win.width) - side) // 2
    ms = ms_ds.read(band_idx, window=windows.Window(c0, r0, side, side)).astype(np.float64)
    pr = int(pan_win.row_off) + (r0 - int(ms_win.row_off)) * ratio
    pc = int(pan_win.col_off) + (c0 - int(ms_win.col_off)) * ratio
    pan = pan_ds.read(window=windows.Window(pc, pr, side * ratio, side * ratio)).astype(
        np.float64)
    folder = opts.get("save_adapted") or Path(stack.enter_context(
        tempfile.TemporaryDirectory(prefix="sumdun-adapted-"))) / "weights"
    opts["save_adapted"] = str(folder)
    prepare(torch.from_numpy(ms)[None], finer_pan(torch.from_numpy(pan)[None], k), sensor,
            ratio * k,
            progress=progress, note={"window_ms": [r0, c0, side, side]}, grid=k, **opts)
    for key in ("adapt", "adapt_mode", "adapt_params", "adapt_seed", "adapt_seconds",
                "save_adapted"):
        opts.pop(key, None)  # every tile now fuses with the adapted weights as they are
    opts["weights"] = str(folder)
    return opts


def _imd_beside(path: str):
    """A DigitalGlobe ``.IMD`` beside the MS file (same stem, else the only one there)."""
    p = Path(path)
    same = p.with_suffix(".IMD")
    if same.exists():
        return same
    found = list(p.parent.glob("*.IMD"))
    return found[0] if len(found) == 1 else None


def _cast(block: np.ndarray, invalid: np.ndarray, dtype: np.dtype, nodata) -> np.ndarray:
    """Round and clip to ``dtype``; valid pixels that would equal nodata move one step off it."""
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        rounded = np.rint(block)                       # one temporary, then in place
        out = np.clip(rounded, info.min, info.max, out=rounded).astype(dtype)
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


#: Output formats by file extension (GDAL driver names); ``driver=`` / ``--of`` picks any other.
FORMATS = {".tif": "GTiff", ".tiff": "GTiff", ".jp2": "JP2OpenJPEG", ".j2k": "JP2OpenJPEG",
           ".img": "HFA", ".png": "PNG", ".vrt": None}
OUT_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def resolve_device(device: str | None) -> str:
    """``auto`` (or None) -> ``cuda`` when available, else ``cpu``; ``cuda`` without CUDA and
    unknown names are a :class:`UsageError`."""
    import torch

    d = (device or "auto").lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return d
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r}: this machine has no CUDA GPU (or torch is a "
                             "CPU build); use --device cpu or auto")
        return d
    raise UsageError(f"device must be auto, cpu or cuda[:N], got {device!r}")


def _driver_for(out_path: Path, driver: str | None, cog: bool) -> str:
    rasterio = require("rasterio")
    if cog:
        if driver not in (None, "COG"):
            raise UsageError(f"--cog writes a COG; it cannot be combined with --of {driver}")
        driver = "COG"
    if driver is None:
        suffix = out_path.suffix.lower()
        if suffix not in FORMATS or FORMATS[suffix] is None:
            raise UsageError(f"cannot tell the output format from {out_path.name!r}; name it "
                             ".tif (GeoTIFF) or pass --of DRIVER (GTiff, COG, JP2OpenJPEG, "
                             "HFA, ...)")
        driver = FORMATS[suffix]
    with rasterio.Env() as env:
        known = env.drivers()
    if driver not in known:
        raise UsageError(f"output format {driver!r} is not a GDAL driver of this build; e.g. "
                         "GTiff, COG, JP2OpenJPEG, HFA")
    return driver


def _check_output(out_path: Path, inputs) -> None:
    """Fail before any work on an output path that cannot be written."""
    if out_path.is_dir():
        raise UsageError(f"the output {out_path} is a folder; give a file name, e.g. "
                         f"{out_path / 'fused.tif'}")
    if not out_path.parent.is_dir():
        raise UsageError(f"output folder does not exist: {out_path.parent}; create it first")
    if not os.access(out_path.parent, os.W_OK | os.X_OK):
        raise DataError(f"cannot write to the output folder {out_path.parent} (permission "
                        "denied); choose another folder or fix its permissions")
    for src in inputs:
        if Path(src).exists() and out_path.exists() and out_path.samefile(src):
            raise UsageError(f"the output {out_path} is one of the inputs; choose another name")


def _parse_nodata(nodata) -> tuple[bool, float | None]:
    """``(given, value)``: None -> (False, None) (from the files); ``"none"`` -> (True, None)
    (no nodata at all); ``"nan"`` or a number -> (True, value)."""
    if nodata is None:
        return False, None
    if isinstance(nodata, str):
        if nodata.strip().lower() == "none":
            return True, None
        try:
            return True, float(nodata)
        except ValueError:
            raise UsageError(f"nodata must be a number, nan or none, got {nodata!r}") from None
    return True, float(nodata)


def _fill_invalid(a: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """``a`` ``(C, H, W)`` with the ``invalid`` pixels ``(H, W)`` set to each band's mean over
    the valid pixels. Points at the mean add nothing to a least-squares slope or intercept, to a
    covariance or to a ratio of standard deviations, so the methods' global statistics
    (regressions, gains, std matching) stay those of the valid pixels; only filters within a
    kernel's reach of the nodata see the filled values."""
    out = a.copy()
    valid = ~invalid
    for k in range(a.shape[0]):
        out[k][invalid] = a[k][valid].mean(dtype=np.float64)
    return out


def _is_constant(a: np.ndarray) -> bool:
    """Whether a band of ``a (C, H, W)`` is constant, to 1e-9 of its magnitude (a band whose
    nodata was filled with the mean of equal values differs from them in the last bit)."""
    flat = a.reshape(a.shape[0], -1)
    hi, lo = flat.max(1), flat.min(1)
    return bool((hi - lo <= 1e-9 * np.maximum(np.abs(hi), np.abs(lo))).any())


def _upsample_only(ms: np.ndarray, ratio: int) -> np.ndarray:
    """``(C, h, w)`` -> ``(C, ratio h, ratio w)`` without PAN detail: EXP (interp23tap) for
    power-of-two ratios, pixel replication otherwise; for tiles with nothing to estimate."""
    from .kernels import _check_pow2_ratio

    try:
        _check_pow2_ratio(ratio)
    except ValueError:
        return np.repeat(np.repeat(ms, ratio, 1), ratio, 2)
    from .degrade_numpy import interp23tap

    return interp23tap(np.ascontiguousarray(ms), ratio)


def reproducibility(method: str) -> str:
    """What a second run with other threads gives (the ``SUMDUN_REPRODUCIBLE`` tag; the README's
    guarantee, pinned by ``tests/test_reproducible.py``)."""
    from .fusion import get_method

    if get_method(method).family == "classical":
        return ("bit-identical at any thread count, in sumdun fuse and fuse-batch (same machine "
                "and library versions)")
    return ("bit-identical on the same device at the same thread count; across CPU thread "
            "counts within 1e-5 of the data range (integer outputs within 1 DN); a GPU's "
            "float32 kernels differ more")


def _provenance(method: str, sensor, options: dict, prompt_text: str | None, ms_path, pan_path,
                bands, bands_fused: int) -> dict:
    """GeoTIFF tags saying how the file was made (``gdalinfo`` shows them)."""
    import json

    from . import __version__
    from .fusion import get_method

    tags = {"SUMDUN_VERSION": __version__, "SUMDUN_METHOD": method,
            "SUMDUN_SENSOR": sensor.key,
            "SUMDUN_OPTIONS": json.dumps({k: v for k, v in options.items()
                                          if isinstance(v, (int, float, str, bool, type(None)))},
                                         sort_keys=True),
            "SUMDUN_INPUTS": f"{Path(ms_path).name} {Path(pan_path).name}"}
    if bands:
        tags["SUMDUN_MS_BANDS"] = ",".join(map(str, bands))
    tags["SUMDUN_REPRODUCIBLE"] = reproducibility(method)
    if get_method(method).family == "neural":
        from .weights import weights_dir

        from .methods.neural.baselines import weights_for

        w = weights_for(method, bands_fused, options.get("weights"))
        folder = Path(w) if Path(w).is_dir() else weights_dir(w)
        f = folder / "model.safetensors"
        if f.exists():
            from ._files import file_sha256

            tags["SUMDUN_WEIGHTS"] = folder.name
            tags["SUMDUN_WEIGHTS_SHA256"] = file_sha256(f)
        if prompt_text is not None:
            tags["SUMDUN_PROMPT"] = prompt_text
    return tags


def fuse_geotiff(ms_path: str | os.PathLike, pan_path: str | os.PathLike,
                 out_path: str | os.PathLike, method: str | None = None,
                 sensor: str | None = None, ratio: int = 4, *, tile: int = 512,
                 overlap: int = 32, prompt: str | None = None, describer: str = "stats",
                 prompt_scope: str = "scene", device: str = "auto", dtype: str | None = None,
                 nodata: float | str | None = None, cog: bool = False,
                 compress: str = "deflate", driver: str | None = None,
                 creation_options: dict | None = None, bands: list[int] | None = None,
                 progress: bool = True, describer_options: dict | None = None,
                 crop_to_overlap: bool = False, summary: dict | None = None,
                 overviews: bool = False, tile_rows: tuple[int, int] | None = None,
                 tags: dict | None = None, **options: Any) -> Path:
    """Pansharpen a GeoTIFF pair tile by tile and write a georeferenced raster.

    Args:
        ms_path, pan_path: MS (C bands) and PAN (1 band) rasters, same CRS, pixel-size ratio
            ``ratio``, overlapping extents.
        out_path: output file; replaced only when the new file is complete. Its format comes
            from the extension (``.tif`` GeoTIFF, ``.jp2`` JPEG 2000, ``.img`` Erdas) or
            ``driver``.
        method: a registry name (:func:`sumdun.fusion.list_methods`); ``sumdun`` when its
            weights ship, else ``mtf-glp-hpm``.
        sensor: sensor name for MTF gains and bit depth; generic when None.
        tile, overlap: tile core and context in PAN pixels (tile a multiple of 16 and of the
            ratio, overlap a multiple of the ratio and at most tile / 4).
        prompt: SUM-DUN only: a fixed text prompt; otherwise ``describer`` (``stats`` or
            ``mllm``) writes one per scene (from an overview) or per tile (``prompt_scope``).
        device: SUM-DUN's device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        dtype: output dtype; the MS dtype by default (rounded and clipped), e.g. ``float32``.
        nodata: overrides both inputs' nodata value: a number, ``"nan"``, or ``"none"`` (every
            pixel is data). When neither the files nor this argument give one, MS pixels that
            are 0 in every band (black collars) are nodata.
        cog: write a Cloud-Optimised GeoTIFF (same as ``driver="COG"``).
        compress: GeoTIFF compression (``deflate``; None for none).
        driver: GDAL driver of the output (overrides the extension).
        creation_options: GDAL creation options (``{"PREDICTOR": "2"}``), as ``--co``.
        bands: 1-based MS bands to fuse (``[1, 2, 3, 7]``), as ``gdal_translate -b``.
        crop_to_overlap: fuse only the ground both inputs cover when their extents differ by
            more than one MS pixel (an error otherwise, so a mismatched pair is not
            silently cropped).
        summary: a dict filled with the run's facts (size, tiles, method, time, warnings).
        overviews: add internal overviews (2, 4, 8, ... down to 256 px, averaged), as
            ``gdaladdo -r average`` (a COG always has them).
        tile_rows: ``(i0, i1)``: fuse only tile rows ``i0 .. i1 - 1`` of the scene's grid
            (:func:`scene_grid`) into a GeoTIFF *strip* holding the output rows they finish
            (tile row ``i0 - 1`` is fused too, for the blend, and not written). Strips of
            consecutive row ranges, joined by :func:`join_strips`, equal the whole-scene
            output pixel for pixel: this is how ``sumdun fuse-batch`` shares one big scene
            between workers. Not with ``adapt``.
        tags: extra metadata tags written into the output (after the provenance tags).
        **options: method options (toolbox defaults otherwise). For SUM-DUN, ``adapt=STEPS``
            (with ``adapt_mode``, ``adapt_params``, ``adapt_seed``, ``adapt_seconds``,
            ``save_adapted``) fine-tunes a copy of the weights once, on the central window of
            the scene (at most :data:`ADAPT_WINDOW` PAN pixels a side), then fuses every tile
            with it (:mod:`sumdun.engine.adapt`).

    Nodata never enters a method's statistics: inside each tile, invalid pixels are filled
    with the valid pixels' band means before fusing (see :func:`_fill_invalid`) and set to
    nodata afterwards.

    Returns:
        The output path.
    """
    import time
    import warnings

    rasterio = require("rasterio")
    from .fusion import default_method, fuse, get_method, method_options, validate_options
    from .threads import chosen_threads

    t_start = time.perf_counter()
    method = method or default_method()
    m = get_method(method)
    validate_options(method, options)
    _check_tiling(tile, overlap, ratio)
    if prompt_scope not in ("scene", "tile"):
        raise UsageError(f"prompt_scope must be 'scene' or 'tile', got {prompt_scope!r}")
    if describer not in ("stats", "mllm"):
        raise UsageError(f"describer must be 'stats' or 'mllm', got {describer!r}")
    if dtype is not None and str(dtype) not in OUT_DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(OUT_DTYPES)}, got {dtype!r}")
    if prompt is not None and "prompt" not in method_options(method):
        raise UsageError(f"--prompt applies to methods that read prompts (sumdun, tmdiff), "
                         f"not to {method!r}")
    if m.family == "neural":
        options["device"] = resolve_device(options.get("device", device))
    if tile_rows is not None and options.get("adapt"):
        raise UsageError("adapt fine-tunes on the whole scene; it cannot fuse a strip "
                         "(tile_rows): adapt once with --save-adapted, then fuse with --weights")
    out_path = Path(out_path)
    out_driver = "GTiff" if tile_rows is not None else _driver_for(out_path, driver, cog)
    co = {str(k).upper(): str(v) for k, v in (creation_options or {}).items()}
    _check_output(out_path, (ms_path, pan_path))
    nodata_given, nodata_value = _parse_nodata(nodata)
    # float32 tiles for methods that compute in float32 (half the memory; the output is
    # rounded to the MS dtype or kept as float32 anyway), float64 for the others
    work_dtype = np.float32 if m.float32 else np.float64
    notes: list[str] = []
    # scene_stack: what lives for the whole run (the adapted weights' temporary folder)
    with contextlib.ExitStack() as scene_stack, open_raster(ms_path, "MS") as ms_ds, \
            open_raster(pan_path, "PAN") as pan_ds:
        if bands:
            bad = [b for b in bands if not 1 <= b <= ms_ds.count]
            if bad or len(set(bands)) != len(bands):
                raise UsageError(f"--bands {','.join(map(str, bands))}: the MS has bands 1 to "
                                 f"{ms_ds.count}; give each once")
        band_idx = list(bands) if bands else list(range(1, ms_ds.count + 1))
        n_bands = len(band_idx)
        ms_ds, align_note = aligned_ms(ms_ds, pan_ds, ratio)  # a near-ratio grid: resampled
        if align_note:
            scene_stack.enter_context(ms_ds)
            notes.append(align_note)
        s = check_pair(ms_ds, pan_ds, sensor, ratio, ms_bands=n_bands)
        if m.family == "neural" and "bits" not in options and "data_range" not in options:
            # GDAL's NBITS, a band-level tag (GTiff NBITS=12 creation option)
            nbits = getattr(ms_ds, "src_dataset", ms_ds).tags(
                band_idx[0], ns="IMAGE_STRUCTURE").get("NBITS")
            if nbits and nbits.isdigit() and np.dtype(ms_ds.dtypes[0]).kind in "ui":
                options["bits"] = int(nbits)  # the file's metadata, then its data type
            elif np.dtype(ms_ds.dtypes[0]) == np.uint8:
                options["bits"] = 8  # an 8-bit product: its range, not the sensor's
        if sensor is None:
            # a network's range then falls back to 11 bits unless given or read above
            default_range = m.family == "neural" and not {"bits", "data_range"} & set(options)
            notes.append("no --sensor: generic MTF gains (0.3)"
                         f"{' and an 11-bit range' if default_range else ''}; pass --sensor "
                         "for the right ones (see `sumdun sensors`)")
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
        ms_nd = ms_ds.nodata if not nodata_given else nodata_value
        pan_nd = pan_ds.nodata if not nodata_given else nodata_value
        collars = not nodata_given and ms_nd is None and pan_nd is None
        out_nd = ms_nd if ms_nd is not None else pan_nd
        out_dtype = np.dtype(dtype or ms_ds.dtypes[0])
        if collars:
            out_nd = 0 if out_dtype.kind in "ui" else float("nan")
        if out_nd is not None and out_dtype.kind in "ui":
            info = np.iinfo(out_dtype)
            if np.isnan(out_nd) or not (info.min <= out_nd <= info.max) \
                    or out_nd != int(out_nd):
                raise UsageError(f"nodata {out_nd} does not fit the output dtype {out_dtype}; "
                                 "pass --dtype float32 or another --nodata")
        names = None
        if all(ms_ds.descriptions):
            names = [ms_ds.descriptions[b - 1] for b in band_idx]
        elif sensor is not None and not bands:  # the sensor's names when the file has none
            names = _sensor_band_names(s, n_bands)
        H, W = int(pan_win.height), int(pan_win.width)
        rows, cols = axis_tiles(H, tile, overlap), axis_tiles(W, tile, overlap)
        blender = TileBlender(rows, cols, n_bands)
        first, stop, y0, y1 = 0, len(rows), 0, H  # tile rows fused; output rows written
        if tile_rows is not None:
            i0, i1 = tile_rows
            if not 0 <= i0 < i1 <= len(rows):
                raise UsageError(f"tile_rows {tile_rows} outside the scene's {len(rows)} tile "
                                 "rows")
            first, stop = max(0, i0 - 1), i1
            y0, y1 = rows.write(i0)[0], rows.write(i1 - 1)[1]
        check_tile = getattr(m.fn, "check_tile", None)
        if check_tile is not None:  # options that must fit every tile: checked before work
            for hh in {b - a for a, b in (rows.read(i) for i in range(len(rows)))}:
                for ww in {b - a for a, b in (cols.read(j) for j in range(len(cols)))}:
                    try:
                        check_tile(hh, ww, ratio, **options)
                    except UsageError as err:
                        raise UsageError(f"{err} (a {ww} x {hh} tile of this scene; change "
                                         "--tile or the option)") from None

        prompt_text = prompt
        if m.family == "neural":
            from .methods.neural.baselines import weights_for

            weights_for(method, n_bands, options.get("weights"))  # refused before any work
            # SUM-DUN fuses a ratio dividing its own on a finer grid (finer_grid.check_ratio)
            from .methods.neural.finer_grid import check_ratio

            try:
                fine_ok = method == "sumdun" and check_ratio(ratio, 4) > 0
            except ValueError:
                fine_ok = False
            if ratio != 4 and not fine_ok:
                raise UsageError(f"{method}'s shipped weights fuse pairs of ratio 4"
                                 f"{' and 2' if method == 'sumdun' else ''}; this pair "
                                 f"has ratio {ratio}: use a classical method (--method "
                                 "mtf-glp-hpm) or weights trained at that ratio (-o weights=DIR)")
            takes_prompt = "prompt" in method_options(method)
            if prompt is None and prompt_scope == "scene" and takes_prompt:
                from .prompts import get_describer

                d = get_describer(describer, **(describer_options or {}))
                try:
                    prompt_text = _scene_prompt(ms_ds, pan_ds, ms_win, pan_win, s, ratio, d,
                                                band_idx, ms_nd, pan_nd)
                except ValueError as err:  # e.g. an all-nodata scene: nothing to describe
                    notes.append(f"no scene prompt ({err}); the null prompt is used")
                    prompt_text = None
                options["prompt"] = prompt_text
            elif prompt is not None:
                options["prompt"] = prompt
            if options.get("adapt"):  # once per scene, on a window of it, not per tile
                options = _adapt_on_window(ms_ds, pan_ds, ms_win, pan_win, band_idx, s, ratio,
                                           options, progress, scene_stack)
        tile_describer = None
        if "prompt" in method_options(method) and prompt is None and prompt_scope == "tile" \
                and describer != "stats":
            from .prompts import get_describer

            tile_describer = get_describer(describer, **(describer_options or {}))

        windows = require("rasterio.windows")
        strip = windows.Window(pan_win.col_off, pan_win.row_off + y0, W, y1 - y0)
        profile = _profile(n_bands, y1 - y0, W, out_dtype, pan_ds.crs,
                           pan_ds.window_transform(strip), out_nd, tile, compress, co,
                           out_driver, full_height=H)
        tqdm = require("tqdm").tqdm
        bar = tqdm(total=(stop - first) * len(cols), unit="tile", disable=not progress,
                   desc=f"fuse {method} {W}x{H}")
        counts = {"tiles": 0, "empty_tiles": 0, "constant_tiles": 0, "degenerate_tiles": 0,
                  "invalid_pixels": 0,
                  "nonfinite_pixels": 0}
        with contextlib.ExitStack() as stack:
            stack.callback(bar.close)  # ends the bar's line before any error message
            # GDAL's block cache (5 % of RAM by default) is bounded: it would grow with the scene
            work, final_tmp = _output_paths(stack, out_path, out_driver)
            with _disk_errors(out_path), rasterio.open(work, "w", **profile) as dst, \
                    contextlib.ExitStack() as writes:  # closed (writes done) before dst
                if names:
                    for k, name in enumerate(names, start=1):
                        dst.set_band_description(k, name)
                dst.update_tags(**_provenance(method, s, options, prompt_text, ms_path,
                                              pan_path, bands, n_bands), **(tags or {}))
                # GDAL compresses and writes on this thread while the next tiles are fused
                writer = writes.enter_context(BackgroundWriter(dst))
                pending: list = []  # finished tiles of this row, written together
                group = 2 * chosen_threads()
                for i, j in blender.tiles():
                    if not first <= i < stop:
                        continue
                    (r0, r1), (c0, c1) = rows.read(i), cols.read(j)
                    pw = windows.Window(pan_win.col_off + c0, pan_win.row_off + r0,
                                        c1 - c0, r1 - r0)
                    mw = windows.Window(ms_win.col_off + c0 // ratio,
                                        ms_win.row_off + r0 // ratio,
                                        (c1 - c0) // ratio, (r1 - r0) // ratio)
                    ms = _read_tile(ms_ds, "MS", mw, band_idx, (r0, r1, c0, c1))
                    pan = _read_tile(pan_ds, "PAN", pw, None, (r0, r1, c0, c1))
                    ms_bad = np.zeros(ms.shape[1:], bool)
                    if ms_nd is not None:
                        ms_bad = (ms == ms_nd).any(0) if not np.isnan(ms_nd) else \
                            np.isnan(ms).any(0)
                    elif collars:
                        ms_bad = (ms == 0).all(0)
                    ms_nonfinite = ~np.isfinite(ms).all(0) if ms.dtype.kind == "f" else None
                    if ms_nonfinite is not None:
                        ms_bad |= ms_nonfinite
                    invalid = np.repeat(np.repeat(ms_bad, ratio, 0), ratio, 1)
                    if pan_nd is not None:
                        invalid |= (pan[0] == pan_nd) if not np.isnan(pan_nd) else \
                            np.isnan(pan[0])
                    # NaN / inf pixels are nodata whatever was declared (the warning says so)
                    nonfinite = np.zeros(invalid.shape, bool)
                    if ms_nonfinite is not None:
                        nonfinite |= np.repeat(np.repeat(ms_nonfinite, ratio, 0), ratio, 1)
                    if pan.dtype.kind == "f":
                        nonfinite |= ~np.isfinite(pan[0])
                    invalid |= nonfinite
                    counts["tiles"] += 1
                    if invalid.all():
                        counts["empty_tiles"] += 1
                        fused = np.zeros((n_bands, r1 - r0, c1 - c0), np.float32)
                    else:
                        ms_w, pan_w = ms.astype(work_dtype), pan.astype(work_dtype)
                        if invalid.any():
                            ms_lr_bad = invalid.reshape(invalid.shape[0] // ratio, ratio,
                                                        invalid.shape[1] // ratio, ratio
                                                        ).all((1, 3)) | ms_bad
                            ms_w = _fill_invalid(ms_w, ms_lr_bad)
                            pan_w = _fill_invalid(pan_w, invalid)
                        opts = dict(options)
                        if tile_describer is not None:
                            opts["prompt"] = tile_describer.describe(
                                ms_w.astype(np.float64), pan_w.astype(np.float64), s, ratio)
                        if _is_constant(ms_w) or _is_constant(pan_w):
                            counts["constant_tiles"] += 1  # nothing to estimate: upsample
                            fused = _upsample_only(ms_w, ratio)
                        else:
                            try:
                                fused = fuse(ms_w, pan_w, method=method, sensor=s, ratio=ratio,
                                             **opts)
                            except ValueError as err:
                                raise SceneError(f"tile at PAN rows {r0}:{r1}, cols {c0}:{c1}: "
                                                 f"{err}") from err
                            fused = np.asarray(fused)
                            if not np.isfinite(fused[:, ~invalid]).all():
                                # a degenerate tile (e.g. a band constant but for rounding):
                                # the method's statistics divide by ~0; never write its NaN
                                counts["degenerate_tiles"] += 1
                                fused = _upsample_only(ms_w, ratio)
                    (h0, h1, w0, w1), out = blender.add(i, j, np.asarray(fused, np.float32))
                    if h0 < y0:  # the row before a strip: only its blend carry is needed
                        bar.update(1)
                        continue
                    inv = invalid[h0 - r0: h1 - r0, w0 - c0: w1 - c0]
                    counts["invalid_pixels"] += int(inv.sum())
                    counts["nonfinite_pixels"] += int(
                        nonfinite[h0 - r0: h1 - r0, w0 - c0: w1 - c0].sum())
                    pending.append((h0, h1, w0, w1, _cast(out, inv, out_dtype, out_nd)))
                    if len(pending) >= group or j == len(cols) - 1:
                        # several blocks in one write: GDAL compresses them on every thread
                        ph0, ph1, pw0 = pending[0][0], pending[0][1], pending[0][2]
                        block_out = np.concatenate([p[4] for p in pending], axis=2)
                        writer.write(block_out, windows.Window(
                            pw0, ph0 - y0, block_out.shape[2], ph1 - ph0))
                        pending.clear()
                    bar.update(1)
            bar.close()
            _finish(work, final_tmp, out_path, out_driver, co, compress,
                    overviews and tile_rows is None)
    if counts["invalid_pixels"] == (y1 - y0) * W:
        notes.append("the inputs hold no valid pixel: the output is all nodata")
    if counts["degenerate_tiles"]:
        notes.append(f"{counts['degenerate_tiles']} tile(s) where {method} gave NaN or inf "
                     "(statistics of a nearly constant tile) were upsampled only (EXP)")
    if counts["constant_tiles"]:
        notes.append(f"{counts['constant_tiles']} tile(s) with a constant band were upsampled "
                     "only (EXP): nothing to estimate there")
    written_nd = "none" if out_nd is None else f"{out_nd:g}"
    if counts["nonfinite_pixels"]:
        fate = (f"written as nodata {written_nd}" if out_nd is not None else
                "fused from the bands' means (there is no nodata value to write; pass --nodata "
                "to mark them)")
        notes.append(f"{counts['nonfinite_pixels']} PAN-grid pixels are NaN or inf in the MS or "
                     f"the PAN: kept out of the statistics as nodata and {fate}")
    collar_pixels = counts["invalid_pixels"] - counts["nonfinite_pixels"]
    if collars and collar_pixels > 0:
        notes.append(f"no nodata in the files: {collar_pixels} PAN-grid pixels of black collar "
                     f"(MS 0 in every band) written as nodata {written_nd}; pass --nodata none "
                     "to fuse them as data")
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    if summary is not None:
        summary.update(output=str(out_path), format=out_driver, method=method, sensor=s.key,
                       width=W, height=H, bands=n_bands, dtype=out_dtype.name,
                       nodata=None if out_nd is None else float(out_nd),
                       tiles=counts["tiles"], empty_tiles=counts["empty_tiles"],
                       constant_tiles=counts["constant_tiles"],
                       degenerate_tiles=counts["degenerate_tiles"],
                       nodata_pixels=counts["invalid_pixels"], prompt=prompt_text,
                       seconds=round(time.perf_counter() - t_start, 3), warnings=notes)
    return out_path


def _read_tile(ds, role: str, window, bands, where) -> np.ndarray:
    """One tile of an input; a read failure names the file (truncated or corrupt)."""
    rasterio = require("rasterio")
    try:
        return ds.read(bands, window=window) if bands else ds.read(window=window)
    except rasterio.errors.RasterioError as err:
        r0, r1, c0, c1 = where
        raise SceneError(f"reading the {role} file {Path(ds.name).name} failed at PAN rows "
                         f"{r0}:{r1}, cols {c0}:{c1} ({err}): the file is truncated or "
                         "corrupt; re-export or re-download it") from err


def _profile(bands: int, height: int, width: int, dtype: np.dtype, crs, transform, nodata,
             tile: int, compress: str | None, co: dict, driver: str,
             full_height: int | None = None) -> dict:
    """The GeoTIFF profile of an output (or of a strip of one: ``full_height`` is the whole
    output's height, so strips are tiled exactly as the whole file would be)."""
    from .threads import chosen_threads

    block = _block_size(tile)
    profile = dict(driver="GTiff", count=bands, height=height, width=width, dtype=dtype.name,
                   crs=crs, transform=transform, nodata=nodata, BIGTIFF="IF_SAFER")
    if compress:
        profile.update(compress=compress, num_threads=str(chosen_threads()))  # GDAL's
    if (full_height or height) >= block and width >= block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    if driver == "GTiff":
        profile.update({k.lower(): v for k, v in co.items()})
    return profile


def _output_paths(stack: contextlib.ExitStack, out_path: Path, driver: str) -> tuple[Path, Path]:
    """``(work, final_tmp)``: the GeoTIFF to write and the temporary name renamed onto
    ``out_path`` when ``stack`` closes without error (the same file for a GeoTIFF; for another
    format a temporary GeoTIFF, copied as ``driver`` by :func:`_finish`). Both are removed on
    failure; GDAL's block cache is bounded meanwhile."""
    rasterio = require("rasterio")
    stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20))
    final_tmp = stack.enter_context(atomic_path(out_path))
    if driver == "GTiff":
        return final_tmp, final_tmp
    fd, work = tempfile.mkstemp(prefix=f".{out_path.name}.{os.getpid()}.", suffix=".part.tif",
                                dir=out_path.parent)
    os.close(fd)
    stack.callback(Path(work).unlink, missing_ok=True)
    return Path(work), final_tmp


def _finish(work: Path, final_tmp: Path, out_path: Path, driver: str, co: dict,
            compress: str | None, overviews: bool) -> None:
    """Overviews on the written GeoTIFF ``work``; then, for another format, a copy of it as
    ``driver`` into ``final_tmp``."""
    rasterio = require("rasterio")
    with rasterio.open(work) as ds:
        H, W = ds.height, ds.width
    if overviews and driver != "COG" and min(H, W) > 256:
        factors = [2 ** k for k in range(1, 16) if min(H, W) // 2 ** k >= 256] or [2]
        with _disk_errors(out_path), rasterio.open(work, "r+") as dst:
            dst.build_overviews(factors, require("rasterio.enums").Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")
    if driver != "GTiff":
        extra = dict(co)
        if driver == "COG":
            extra.setdefault("COMPRESS", (compress or "NONE").upper())
            extra.setdefault("BIGTIFF", "IF_SAFER")
        with _disk_errors(out_path):
            require("rasterio.shutil").copy(work, final_tmp, driver=driver, **extra)


def scene_grid(ms_path, pan_path, ratio: int = 4, tile: int = 512, overlap: int = 32
               ) -> tuple[int, int, int]:
    """``(height, width, tile_rows)`` of the output :func:`fuse_geotiff` would write for this
    pair (PAN pixels over the shared ground; rows of its tile grid)."""
    _check_tiling(tile, overlap, ratio)
    with open_raster(ms_path, "MS") as ms_ds, open_raster(pan_path, "PAN") as pan_ds:
        ms_al, note = aligned_ms(ms_ds, pan_ds, ratio)  # the grid fuse_geotiff will use
        with contextlib.ExitStack() as stack:
            if note:
                stack.enter_context(ms_al)
            _, pan_win, _ = _common_windows(ms_al, pan_ds, ratio)
    H, W = int(pan_win.height), int(pan_win.width)
    return H, W, len(axis_tiles(H, tile, overlap))


def join_strips(strips: list, out_path: str | os.PathLike, *, driver: str | None = None,
                cog: bool = False, creation_options: dict | None = None,
                compress: str | None = "deflate", overviews: bool = False,
                tile: int = 512) -> Path:
    """Join GeoTIFF strips written by :func:`fuse_geotiff` with consecutive ``tile_rows``
    (top to bottom) into one output, written atomically, with the strips' georeferencing,
    tags, band names and nodata; the pixels equal a whole-scene run's. Memory: one block
    row of the output."""
    rasterio = require("rasterio")
    windows = require("rasterio.windows")
    out_path = Path(out_path)
    out_driver = _driver_for(out_path, driver, cog)
    co = {str(k).upper(): str(v) for k, v in (creation_options or {}).items()}
    with contextlib.ExitStack() as stack:
        srcs = [stack.enter_context(rasterio.open(p)) for p in strips]
        first = srcs[0]
        H, W = sum(s.height for s in srcs), first.width
        for s in srcs[1:]:
            if (s.width, s.count, s.dtypes, s.crs) != (W, first.count, first.dtypes, first.crs):
                raise DataError(f"strip {s.name} does not fit {first.name}: not parts of one "
                                "output")
        profile = _profile(first.count, H, W, np.dtype(first.dtypes[0]), first.crs,
                           first.transform, first.nodata, tile, compress, co, out_driver)
        work, final_tmp = _output_paths(stack, out_path, out_driver)
        with _disk_errors(out_path), rasterio.open(work, "w", **profile) as dst:
            for k, name in enumerate(first.descriptions, start=1):
                if name:
                    dst.set_band_description(k, name)
            dst.update_tags(**first.tags())
            y = 0
            for s in srcs:
                step = _block_size(tile)
                for r in range(0, s.height, step):
                    h = min(step, s.height - r)
                    dst.write(s.read(window=windows.Window(0, r, W, h)),
                              window=windows.Window(0, y + r, W, h))
                y += s.height
        _finish(work, final_tmp, out_path, out_driver, co, compress, overviews)
    return out_path


@contextlib.contextmanager
def _disk_errors(out_path: Path):
    """A full disk or a write failure becomes a :class:`DataError` that keeps the old output."""
    import errno

    rasterio = require("rasterio")
    try:
        yield
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DataError(f"no space left writing {out_path}; free space or write to "
                            "another disk (any earlier output was kept)") from err
        raise DataError(f"writing {out_path} failed ({err}); any earlier output was "
                        "kept") from err
    except rasterio.errors.RasterioIOError as err:
        text = str(err)
        why = "no space left" if "space" in text.lower() else text
        raise DataError(f"writing {out_path} failed ({why}); free space or write elsewhere "
                        "(any earlier output was kept)") from err
