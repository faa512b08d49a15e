"""The offline ``stats`` describer: a deterministic scene description from image statistics.

Land cover per MS pixel from spectral indices (where the sensor has red, green and NIR bands):
vegetation ``NDVI = (NIR - R)/(NIR + R) > 0.25``; water ``NDWI = (G - NIR)/(G + NIR) > 0.05``
(McFeeters) with a NIR darker than half the scene median, not vegetation; of the rest, built-up
where the PAN under the pixel is textured (mean Sobel gradient over a 3 x 3 MS-pixel
neighbourhood above 0.03 of the PAN's 1-99 % range) or among the brightest 10 % (roofs,
pavement), bare soil otherwise. Scene cues from the PAN: edge density (share of pixels whose
gradient exceeds 0.1 of that range), brightness (median / sensor maximum), noise (Immerkaer's
estimator, relative to the range), shadows (share of pixels darker than 0.35 of the median);
haze from the blue band's dark object (1st percentile / median). Indices are computed on the
digital numbers as delivered (no radiometric calibration): thresholds are heuristics.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import convolve, sobel, uniform_filter

from ..sensors import Sensor, sensor_for_bands

__all__ = ["STATS_VERSION", "SceneStats", "scene_stats", "render", "StatsDescriber"]

STATS_VERSION = "stats-1"
CLASSES = ("vegetation", "water", "built-up", "bare soil")


@dataclass
class SceneStats:
    """Numbers behind a ``stats`` description (fractions in [0, 1] of valid MS pixels)."""

    sensor: str
    bands: int
    ratio: int
    fractions: dict
    edge_density: float
    brightness: float
    noise: float
    haze: float
    shadow: float

    def as_dict(self) -> dict:
        return asdict(self)


def _band(ms, sensor: Sensor, name: str):
    names = sensor.band_names
    if ms.shape[0] == 4 and sensor.n_bands == 8:  # 4-band subset of an 8-band sensor
        names = tuple(names[i] for i in sensor.subset4)
    if len(names) != ms.shape[0]:  # e.g. 3 bands without a sensor: no band is known
        return None
    for cand in ((name,) if name != "nir" else ("nir", "nir1")):
        if cand in names:
            return ms[names.index(cand)].astype(np.float64)
    return None


def _gradient(pan: np.ndarray) -> np.ndarray:
    p = pan.astype(np.float64)
    return np.hypot(sobel(p, 0, mode="nearest"), sobel(p, 1, mode="nearest")) / 8.0


def scene_stats(ms: np.ndarray, pan: np.ndarray, sensor: str | Sensor | None = None,
                ratio: int = 4, nodata: float | None = 0) -> SceneStats:
    """Statistics of an MS ``(C, h, w)`` + PAN ``(1, ratio*h, ratio*w)`` pair (digital numbers).

    Pixels equal to ``nodata`` in any band are left out (``None``: keep all).
    """
    ms = np.asarray(ms)
    pan = np.asarray(pan)
    if ms.ndim != 3 or pan.ndim != 3 or pan.shape[0] != 1:
        raise ValueError(f"expected ms (C, h, w) and pan (1, H, W), got {ms.shape}, {pan.shape}")
    c, h, w = ms.shape
    if pan.shape[1:] != (h * ratio, w * ratio):
        raise ValueError(f"pan {pan.shape} must be {ratio}x the size of ms {ms.shape}")
    s = sensor_for_bands(sensor, c)
    valid = np.ones((h, w), bool) if nodata is None else ~np.any(ms == nodata, axis=0)
    p = pan[0].astype(np.float64)
    pan_valid = np.repeat(np.repeat(valid, ratio, 0), ratio, 1)
    if nodata is not None:
        pan_valid &= p != nodata
    if valid.sum() < 1 or pan_valid.sum() < 16:
        raise ValueError("the pair has no valid (non-nodata) pixels to describe")
    pv = p[pan_valid]
    lo, hi = np.percentile(pv, [1, 99])
    rng = max(hi - lo, 1e-9)
    grad = _gradient(p) / rng
    # land cover
    red, green, nir = _band(ms, s, "red"), _band(ms, s, "green"), _band(ms, s, "nir")
    fractions: dict = {}
    if red is not None and green is not None and nir is not None:
        eps = 1e-9
        ndvi = (nir - red) / (nir + red + eps)
        ndwi = (green - nir) / (green + nir + eps)
        veg = ndvi > 0.25
        nir_med = np.median(nir[valid]) if valid.any() else 1.0
        water = (ndwi > 0.05) & (nir < 0.5 * nir_med) & ~veg
        tex = grad.reshape(h, ratio, w, ratio).mean(axis=(1, 3))
        tex = uniform_filter(tex, size=3, mode="nearest")
        bright = p.reshape(h, ratio, w, ratio).mean(axis=(1, 3)) > np.percentile(pv, 90)
        built = ~veg & ~water & ((tex > 0.03) | bright)
        soil = ~veg & ~water & ~built
        n = valid.sum()
        for name, m in zip(CLASSES, (veg, water, built, soil)):
            fractions[name] = float((m & valid).sum() / n)
    # cues
    edge_density = float((grad[pan_valid] > 0.1).mean())
    brightness = float(np.median(pv) / (s.max_value or pv.max()))
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)
    lap = np.abs(convolve(p, k, mode="nearest"))[1:-1, 1:-1]
    sigma = math.sqrt(math.pi / 2) * lap.mean() / 6.0
    noise = float(sigma / rng)
    blue = _band(ms, s, "blue")
    haze = 0.0
    if blue is not None and valid.any():
        bv = blue[valid]
        haze = float(np.percentile(bv, 1) / max(np.median(bv), 1e-9))
    shadow = float((pv < 0.35 * np.median(pv)).mean())
    return SceneStats(s.name, c, ratio, fractions, edge_density, brightness, noise, haze, shadow)


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def render(st: SceneStats) -> str:
    """A fluent sentence from :class:`SceneStats`."""
    parts = [f"A {st.sensor} scene with {st.bands} multispectral bands at a 1:{st.ratio} "
             "resolution ratio"]
    if st.fractions:
        ranked = sorted(st.fractions.items(), key=lambda kv: -kv[1])
        main, rest = ranked[0], [kv for kv in ranked[1:] if kv[1] >= 0.05]
        cover = f", dominated by {main[0]} ({_pct(main[1])})"
        if rest:
            cover += " with " + ", ".join(f"{k} ({_pct(v)})" for k, v in rest[:-1])
            cover += (" and " if len(rest) > 1 else "") + f"{rest[-1][0]} ({_pct(rest[-1][1])})"
        parts.append(cover)
    else:
        parts.append("; its bands do not allow spectral land-cover indices")
    texture = ("smooth with few edges" if st.edge_density < 0.01 else
               "moderately textured" if st.edge_density < 0.05 else
               "highly textured with dense edges")
    light = "dark" if st.brightness < 0.1 else "moderately bright" if st.brightness < 0.3 else "bright"
    noise = "low noise" if st.noise < 0.005 else "moderate noise" if st.noise < 0.02 else "high noise"
    haze = "clear" if st.haze < 0.4 else "slightly hazy" if st.haze < 0.6 else "hazy"
    shadow = ("few shadows" if st.shadow < 0.05 else "some shadows" if st.shadow < 0.15
              else "extensive shadows")
    return (", ".join(parts[:1]) + "".join(parts[1:]) + f". The panchromatic image is {texture}; "
            f"the scene is {light}, {haze}, with {noise} and {shadow}.")


class StatsDescriber:
    """Describer from image statistics: deterministic, offline, versioned (``STATS_VERSION``)."""

    name = "stats"
    version = STATS_VERSION
    model = ""
    instruction = ""

    def key(self) -> str:
        return f"{self.name}:{self.version}"

    def describe(self, ms, pan, sensor=None, ratio: int = 4) -> str:
        return render(scene_stats(ms, pan, sensor, ratio))
