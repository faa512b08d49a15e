"""The offline ``stats`` describer: a deterministic scene description from image statistics.

What it measures (``scene_stats``), on the digital numbers as delivered (no radiometric
calibration, so every threshold below was calibrated on real products, not taken from
reflectance literature):

* **Sensor and product**: the sensor's name, its band set with centre wavelengths, the ground
  sampling distance (from the georeferencing or the product metadata), the bit depth (the
  sensor's when the data fit in it, else the smallest of 8, 10, 11, 12, 14, 16 bits holding
  the maximum; "floating point" for float data in [0, 1]).
* **Land cover** per MS pixel where red, green and NIR bands are known: vegetation
  ``NDVI > T_NDVI``; water ``NDWI = (G - NIR) / (G + NIR) > T_NDWI`` (McFeeters 1996) on
  smooth ground (shadows in a textured city are NIR-dark too); cloud: bright in every visible
  band (above ``T_BRIGHT`` x its 25th percentile and ``T_BRIGHT_ABS`` of the data range) with
  a flat visible spectrum, smooth, and a NIR as bright as the red; snow: as bright, flat and
  smooth but with a NIR clearly below the visible bands; shadow: PAN
  under ``T_SHADOW`` x its median and not water; of the rest, built-up where the PAN under the
  pixel is textured (mean Sobel gradient over 3 x 3 MS pixels above ``T_TEXTURE`` of the PAN's
  1-99 % range) or among the brightest 10 %, bare soil otherwise. Without those bands: the
  share of textured and smooth ground.
* **Structure**: edge density (share of PAN pixels whose gradient exceeds 0.1 of the range) and
  the dominant structure scale, the band of a difference-of-Gaussians pyramid (sigma 1, 2, 4,
  8, 16 PAN pixels) holding the most energy; a pattern of period P peaks near sigma P / 4, so
  the text gives structures ``2 sigma`` across (half a period), in pixels and metres.
* **Haze**: dark-object ratio of the blue band (1st percentile / median), after Chavez, "An
  improved dark-object subtraction technique", RSE 24, 1988: a hazy scene has no dark pixels.
* **Noise**: Immerkaer, "Fast noise variance estimation", CVIU 64, 1996 (Laplacian-difference
  mask on the PAN), as a signal-to-noise ratio against the PAN's 1-99 % range.
* **Saturation**: share of PAN or MS pixels at the top of the data range.
* **Acquisition geometry** when the caller passes it (``meta``: ``sun_elevation``,
  ``off_nadir`` in degrees, as :func:`sumdun.io.extra.read_imd` reads them from a DigitalGlobe
  ``.IMD``; ``gsd_m``).

Thresholds ``T_*`` and the level limits were set by ``scripts/calibrate_describer.py`` on the
patches of every real scene we have (dgsamples WorldView-2/3, PAirMax, SpaceNet, Sentinel-2)
so that each level splits real scenes (docs/prompts.md lists the shares); fixtures of known
content test each attribute (``tests/test_prompts.py``). ``render`` writes two to four
sentences whose order and wording vary with the scene (chosen by a hash of the numbers, so the
same pair always reads the same).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.ndimage import convolve, gaussian_filter, sobel, uniform_filter

from ..sensors import Sensor, sensor_for_bands

__all__ = ["STATS_VERSION", "SceneStats", "scene_stats", "render", "StatsDescriber",
           "WAVELENGTHS_NM"]

STATS_VERSION = "stats-2"
CLASSES = ("vegetation", "water", "built-up", "bare soil", "shadow", "cloud", "snow")

#: centre wavelengths (nm) by band name (WorldView-3 / Sentinel-2 MSI spectral response tables)
WAVELENGTHS_NM = {"coastal": 427, "blue": 482, "green": 547, "yellow": 604, "red": 660,
                  "red_edge": 722, "nir": 832, "nir1": 824, "nir2": 913, "red_edge1": 705,
                  "red_edge2": 740, "red_edge3": 783, "nir_narrow": 865, "swir1": 1610,
                  "swir2": 2190}

# --- calibrated thresholds (scripts/calibrate_describer.py) -----------------------------------
T_NDVI = 0.25          # vegetation, NDVI on digital numbers
T_NDWI = 0.2           # water: NDWI on digital numbers (NIR under 2/3 of the green)
T_TEXTURE = 0.03       # built-up texture, mean PAN gradient / PAN range
T_SHADOW = 0.35        # shadow, PAN / median PAN
T_BRIGHT = 1.8         # cloud or snow: every visible band above 1.8 x its 25th percentile
T_BRIGHT_ABS = 0.35    # ... and above 35 % of the data range
# level limits: the terciles of 340 real patches of 13 scenes (calibrate_describer.py)
EDGE_LEVELS = (0.10, 0.17)            # edge density: few / moderate / dense
HAZE_LEVELS = (0.75, 0.87)            # dark-object ratio: clear / slight haze / hazy
SNR_LEVELS = (40.0, 87.0)             # PAN range / noise sigma: noisy / moderate / clean
BRIGHT_LEVELS = (0.12, 0.20)          # median PAN / data range: dark / moderate / bright


@dataclass
class SceneStats:
    """Numbers behind a ``stats`` description (fractions in [0, 1] of valid MS pixels)."""

    sensor: str
    bands: int
    ratio: int
    band_names: tuple = ()
    fractions: dict = field(default_factory=dict)
    textured: float | None = None       # share of textured ground, when no spectral classes
    edge_density: float = 0.0
    structure_px: float = 0.0           # dominant structure scale, PAN pixels
    brightness: float = 0.0             # median PAN / data range
    snr: float = 0.0                    # PAN 1-99 % range / noise sigma
    haze: float = 0.0                   # blue dark-object ratio (0 when no blue band)
    saturated: float = 0.0              # share of pixels at the top of the range
    bits: int | None = None             # bit depth of the product; None for float data
    gsd_m: float | None = None
    sun_elevation: float | None = None
    off_nadir: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _names(ms: np.ndarray, sensor: Sensor, band_names=None) -> tuple:
    if band_names is not None and len(band_names) == ms.shape[0]:
        return tuple(str(n).lower() for n in band_names)
    names = sensor.band_names
    if ms.shape[0] == 4 and sensor.n_bands == 8:  # 4-band subset of an 8-band sensor
        names = tuple(names[i] for i in sensor.subset4)
    return tuple(names) if len(names) == ms.shape[0] else ()


def _band(ms, names: tuple, name: str):
    for cand in {"nir": ("nir", "nir1", "nir_narrow"), "red": ("red",), "green": ("green",),
                 "blue": ("blue",)}[name]:
        if cand in names:
            return ms[names.index(cand)].astype(np.float64)
    return None


def _gradient(pan: np.ndarray) -> np.ndarray:
    p = pan.astype(np.float64)
    return np.hypot(sobel(p, 0, mode="nearest"), sobel(p, 1, mode="nearest")) / 8.0


def _bits(top: float, is_float: bool) -> int | None:
    if is_float and top <= 1.5:
        return None
    for b in (8, 10, 11, 12, 14, 16):
        if top <= 2 ** b - 1:
            return b
    return 32


def _structure_scale(p: np.ndarray) -> float:
    """Sigma (PAN pixels) of the difference-of-Gaussians band with the most energy."""
    sigmas = [s for s in (1, 2, 4, 8, 16) if 6 * s < min(p.shape)] or [1]
    prev, energy = p, []
    for s in sigmas:
        g = gaussian_filter(p, s, mode="nearest")
        energy.append(float(((prev - g) ** 2).mean()))
        prev = g
    return float(sigmas[int(np.argmax(energy))])


def scene_stats(ms: np.ndarray, pan: np.ndarray, sensor: str | Sensor | None = None,
                ratio: int = 4, nodata: float | None = 0, meta: dict | None = None,
                band_names=None) -> SceneStats:
    """Statistics of an MS ``(C, h, w)`` + PAN ``(1, ratio*h, ratio*w)`` pair (digital numbers).

    Pixels equal to ``nodata`` in any band are left out (``None``: keep all). ``meta`` may give
    ``gsd_m`` (PAN pixel size, metres), ``sun_elevation`` and ``off_nadir`` (degrees), ``bits``.
    """
    ms = np.asarray(ms)
    pan = np.asarray(pan)
    meta = meta or {}
    if ms.ndim != 3 or pan.ndim != 3 or pan.shape[0] != 1:
        raise ValueError(f"expected ms (C, h, w) and pan (1, H, W), got {ms.shape}, {pan.shape}")
    c, h, w = ms.shape
    if pan.shape[1:] != (h * ratio, w * ratio):
        raise ValueError(f"pan {pan.shape} must be {ratio}x the size of ms {ms.shape}")
    s = sensor_for_bands(sensor, c)
    names = _names(ms, s, band_names)
    finite = np.isfinite(ms).all(0)
    valid = finite if nodata is None else finite & ~np.any(ms == nodata, axis=0)
    p = np.nan_to_num(pan[0].astype(np.float64))
    pan_valid = np.repeat(np.repeat(valid, ratio, 0), ratio, 1) & np.isfinite(pan[0])
    if nodata is not None:
        pan_valid &= p != nodata
    if valid.sum() < 1 or pan_valid.sum() < 16:
        raise ValueError("the pair has no valid (non-nodata) pixels to describe")
    pv = p[pan_valid]
    lo, hi = np.percentile(pv, [1, 99])
    rng = max(hi - lo, 1e-9)
    grad = _gradient(p) / rng
    is_float = ms.dtype.kind == "f" and pan.dtype.kind == "f" and \
        max(np.nanmax(ms), np.nanmax(pan)) <= 1.5
    top = float(max(np.nanmax(ms[:, valid]), pv.max()))
    bits = meta.get("bits") or (s.bits if s.bits and top <= 2 ** s.bits - 1 and not is_float
                                else _bits(top, is_float))
    full = 1.0 if bits is None else float(2 ** bits - 1)
    st = SceneStats(s.name, c, ratio, names, bits=bits, gsd_m=meta.get("gsd_m"),
                    sun_elevation=meta.get("sun_elevation"), off_nadir=meta.get("off_nadir"))
    n = valid.sum()
    tex = uniform_filter(grad.reshape(h, ratio, w, ratio).mean(axis=(1, 3)), size=3,
                         mode="nearest")
    pan_lr = p.reshape(h, ratio, w, ratio).mean(axis=(1, 3))
    red, green, nir = (_band(ms, names, k) for k in ("red", "green", "nir"))
    blue = _band(ms, names, "blue")
    if red is not None and green is not None and nir is not None:
        eps = 1e-9
        ndvi = (nir - red) / (nir + red + eps)
        ndwi = (green - nir) / (green + nir + eps)
        vis_dn = np.stack([red, green] + ([blue] if blue is not None else []))
        q25 = np.array([max(float(np.percentile(b[valid], 25)), eps) for b in vis_dn])
        vis_min = (vis_dn / q25[:, None, None]).min(0)
        flat = vis_dn.max(0) <= 1.25 * vis_dn.min(0)
        bright = (vis_min > T_BRIGHT) & (vis_dn.min(0) > T_BRIGHT_ABS * full) & flat & \
            (ndvi < 0.1) & (tex <= T_TEXTURE)  # bright and textured is a city, not a cloud
        cloud = bright & (nir >= 0.85 * red)
        snow = bright & (nir < 0.85 * red)
        veg = (ndvi > T_NDVI) & ~bright
        dark = (pan_lr < T_SHADOW * np.median(pv)) & ~veg & ~bright
        water = (ndwi > T_NDWI) & (tex <= T_TEXTURE) & ~veg & ~bright  # smooth, NIR-dark
        shadow = dark & ~water
        rest = ~veg & ~water & ~bright & ~shadow
        top10 = pan_lr > np.percentile(pv, 90)
        built = rest & ((tex > T_TEXTURE) | top10)
        soil = rest & ~built
        for name, m in zip(CLASSES, (veg, water, built, soil, shadow, cloud, snow)):
            st.fractions[name] = float((m & valid).sum() / n)
    else:
        st.textured = float(((tex > T_TEXTURE) & valid).sum() / n)
    st.edge_density = float((grad[pan_valid] > 0.1).mean())
    st.structure_px = _structure_scale(np.where(pan_valid, p, np.median(pv)))
    st.brightness = float(np.median(pv) / full)
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)
    lap = np.abs(convolve(p, k, mode="nearest"))[1:-1, 1:-1]
    sigma = math.sqrt(math.pi / 2) * lap[pan_valid[1:-1, 1:-1]].mean() / 6.0
    st.snr = float(rng / max(sigma, 1e-9))
    if blue is not None:
        bv = blue[valid]
        st.haze = float(np.percentile(bv, 1) / max(np.median(bv), 1e-9))
    at_top = full * 0.999
    st.saturated = float(max((pv >= at_top).mean(), (ms[:, valid] >= at_top).any(0).mean()))
    return st


# --- rendering ---------------------------------------------------------------------------------

def _metres(x: float) -> str:
    return f"{x:.0f} m" if x >= 10 else f"{x:.2g} m"


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def _level(x: float, limits: tuple, words: tuple) -> str:
    return words[0] if x < limits[0] else words[1] if x < limits[1] else words[2]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def render(st: SceneStats) -> str:
    """Two to four sentences from :class:`SceneStats`; wording and order vary with the scene
    (a hash of its numbers picks them), never with chance."""
    h = int(hashlib.sha256(repr(sorted(st.as_dict().items())).encode()).hexdigest(), 16)

    def pick(options: list[str], salt: int) -> str:
        return options[(h >> (5 * salt)) % len(options)]

    # sensor and product
    gsd = f" at {_metres(st.gsd_m)}" if st.gsd_m else ""
    depth = "floating-point" if st.bits is None else f"{st.bits}-bit"
    known = [n for n in st.band_names if n in WAVELENGTHS_NM]
    bandtxt = (f"{st.bands} bands ({_join([f'{n.replace(chr(95), chr(32))} {WAVELENGTHS_NM[n]} nm' for n in known])})"
               if known and len(known) == st.bands and st.bands <= 4 else
               f"{st.bands} bands from {WAVELENGTHS_NM[known[0]]} to {WAVELENGTHS_NM[known[-1]]} nm"
               if known and len(known) == st.bands else f"{st.bands} multispectral bands")
    name = "unnamed-sensor" if st.sensor.startswith("Generic") else st.sensor
    art = "An" if name[0].lower() in "aeiou" else "A"
    sensor = pick([f"{art} {name} image{gsd} with {bandtxt}, {depth} data, PAN/MS ratio "
                   f"1:{st.ratio}.",
                   f"{name.capitalize() if name[0].islower() else name} scene, {bandtxt}, {depth}{gsd}, pansharpening ratio "
                   f"1:{st.ratio}.",
                   f"This {depth} {name} pair{gsd} has {bandtxt} and a 1:{st.ratio} "
                   "PAN/MS ratio."], 0)
    # land cover
    if st.fractions:
        ranked = [(k, v) for k, v in sorted(st.fractions.items(), key=lambda kv: -kv[1])
                  if v >= 0.05]
        if not ranked:
            ranked = [max(st.fractions.items(), key=lambda kv: kv[1])]
        main, rest = ranked[0], ranked[1:4]
        if main[1] >= 0.6:
            head = pick([f"It is mostly {main[0]} ({_pct(main[1])})",
                         f"{main[0].capitalize()} covers most of it ({_pct(main[1])})",
                         f"The ground is largely {main[0]} ({_pct(main[1])})"], 1)
        else:
            head = pick([f"The land cover is mixed, led by {main[0]} ({_pct(main[1])})",
                         f"A mix of land covers: {main[0]} ({_pct(main[1])}) first",
                         f"{main[0].capitalize()} ({_pct(main[1])}) leads a mixed scene"], 1)
        cover = head + (" with " + _join([f"{k} ({_pct(v)})" for k, v in rest])
                        if rest else "") + "."
    else:
        cover = (f"Its bands allow no spectral land-cover index; {_pct(st.textured or 0)} of "
                 "the ground is textured.")
    # structure
    edges = _level(st.edge_density, EDGE_LEVELS, ("few edges", "a moderate density of edges",
                                                   "dense edges"))
    size = 2 * st.structure_px  # a half period of the pattern the DoG band of sigma s favours
    scale = f"{size:g} px"
    if st.gsd_m:
        scale = f"about {_metres(size * st.gsd_m)}, {scale}"
    kind = ("fine" if size <= 2 else "medium-sized" if size <= 8 else "large")
    structure = pick([f"The panchromatic band shows {edges}; {kind} structures of {scale} "
                      "dominate.",
                      f"Spatially, {kind} structures of {scale} dominate, with {edges}.",
                      f"Texture: {edges}, mostly {kind} structures ({scale})."], 2)
    # conditions
    cond = [_level(st.haze, HAZE_LEVELS, ("clear", "slightly hazy", "hazy"))
            if st.haze else None,
            _level(st.snr, SNR_LEVELS, ("noisy", "moderately noisy", "clean")),
            _level(st.brightness, BRIGHT_LEVELS, ("dark", "moderately bright", "bright"))]
    cond = [c for c in cond if c]
    extra = []
    if st.saturated >= 0.001:
        extra.append(f"{_pct(st.saturated) if st.saturated >= 0.005 else 'under 1%'} of the "
                     "pixels saturated")
    if st.sun_elevation is not None:
        extra.append(f"a {'low' if st.sun_elevation < 30 else 'high' if st.sun_elevation > 60 else 'mid'}"
                     f" sun ({st.sun_elevation:.0f} deg elevation)")
    if st.off_nadir is not None:
        extra.append(f"a view {st.off_nadir:.0f} deg off nadir")
    conditions = pick([f"Conditions: {_join(cond)}" + (f", {_join(extra)}." if extra else "."),
                       f"The image looks {_join(cond)}" + (f", with {_join(extra)}."
                                                            if extra else "."),
                       f"It is {_join(cond)}" + (f"; {_join(extra)}." if extra else ".")], 3)
    body = [cover, structure, conditions]
    order = pick([[0, 1, 2], [1, 0, 2], [0, 2, 1]], 4)
    return " ".join([sensor] + [body[i] for i in order])


class StatsDescriber:
    """Describer from image statistics: deterministic, offline, versioned (``STATS_VERSION``)."""

    name = "stats"
    version = STATS_VERSION
    model = ""
    instruction = ""

    def key(self) -> str:
        return f"{self.name}:{self.version}"

    def describe(self, ms, pan, sensor=None, ratio: int = 4, meta: dict | None = None,
                 band_names=None) -> str:
        return render(scene_stats(ms, pan, sensor, ratio, meta=meta, band_names=band_names))
