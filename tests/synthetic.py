"""Seeded synthetic scenes for tests: smooth fields with edges, written as GeoTIFF pairs."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def smooth_field(rng: np.random.Generator, h: int, w: int, n_blobs: int = 12) -> np.ndarray:
    """Sum of random Gaussian blobs and a few hard-edged rectangles, values in ~[0, 1]."""
    y, x = np.mgrid[0:h, 0:w].astype(float)
    f = np.zeros((h, w))
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        s = rng.uniform(0.05, 0.25) * max(h, w)
        f += rng.uniform(0.2, 1.0) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))
    for _ in range(4):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        f[y0:y0 + h // 4, x0:x0 + w // 4] += rng.uniform(0.1, 0.4)
    return f / f.max()


def scene(seed: int = 0, bands: int = 4, h: int = 32, w: int = 32, ratio: int = 4,
          bits: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(gt, ms, pan)`` digital numbers: gt ``(C, ratio*h, ratio*w)``, ms ``(C, h, w)`` its block
    mean, pan ``(1, ratio*h, ratio*w)`` a weighted band sum. Float64, in [0, 2**bits - 1]."""
    rng = np.random.default_rng(seed)
    H, W = ratio * h, ratio * w
    base = smooth_field(rng, H, W)
    gt = np.stack([np.clip(base * rng.uniform(0.5, 1.0) + 0.3 * smooth_field(rng, H, W, 6), 0, None)
                   for _ in range(bands)])
    gt = gt / gt.max() * (2**bits - 1) * 0.9 + 20
    ms = gt.reshape(bands, h, ratio, w, ratio).mean(axis=(2, 4))
    weights = rng.uniform(0.5, 1.5, bands)
    pan = (weights[:, None, None] * gt).sum(0, keepdims=True) / weights.sum()
    return gt, ms, pan


def write_pair(folder: Path, ms: np.ndarray, pan: np.ndarray, ratio: int = 4,
               ms_res: float = 4.0, origin=(500000.0, 4400000.0), crs="EPSG:32613",
               pan_crs=None, pan_res=None, pan_origin=None, dtype="uint16", nodata=None):
    """Write ``ms.tif`` and ``pan.tif`` georeferenced (north-up); returns both paths."""
    import rasterio
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, arr, res, org, c in (
        ("ms.tif", ms, ms_res, origin, crs),
        ("pan.tif", pan, pan_res or ms_res / ratio, pan_origin or origin, pan_crs or crs),
    ):
        p = folder / name
        with rasterio.open(p, "w", driver="GTiff", count=arr.shape[0], height=arr.shape[1],
                           width=arr.shape[2], dtype=dtype, crs=c, nodata=nodata,
                           transform=from_origin(org[0], org[1], res, res)) as dst:
            dst.write(np.rint(arr).astype(dtype) if dtype.startswith("uint") else arr.astype(dtype))
        paths.append(p)
    return paths


# digital numbers of four land covers in B, G, R, NIR (11-bit, plausible DN ratios)
LANDCOVER_DN = {
    "vegetation": (300, 420, 300, 1300),
    "water": (520, 460, 300, 110),
    "built-up": (700, 720, 730, 760),
    "bare soil": (500, 620, 760, 860),
}


def landcover_scene(seed: int = 0, bands: int = 4, h: int = 64, w: int = 64, ratio: int = 4):
    """A scene of four land covers on random Voronoi regions: ``(ms, pan, truth)`` where
    ``truth`` maps each class to its share of MS pixels. Built-up regions carry a strong
    building-like texture in PAN and MS; the others are smooth with mild noise."""
    rng = np.random.default_rng(seed)
    classes = list(LANDCOVER_DN)
    seeds = rng.uniform(0, 1, (12, 2)) * (h, w)
    labels_of_seed = np.concatenate([np.arange(4), rng.integers(0, 4, 8)])
    yy, xx = np.mgrid[0:h, 0:w]
    d = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    label = labels_of_seed[np.argmin(d, axis=0)]                    # (h, w) at MS resolution
    H, W = h * ratio, w * ratio
    label_hr = np.repeat(np.repeat(label, ratio, 0), ratio, 1)
    dn = np.array([LANDCOVER_DN[c] for c in classes], float)        # (4 classes, 4 bands)
    if bands == 8:  # coastal, blue, green, yellow, red, red edge, nir1, nir2
        b, g, r, n = dn.T
        dn = np.stack([b * 1.05, b, g, (g + r) / 2, r, (r + n) / 2, n, n * 0.95], 1)
    hr = dn[label_hr].transpose(2, 0, 1)                            # (C, H, W)
    by, bx = np.mgrid[0:H, 0:W]
    texture = np.where(((by // 6) + (bx // 6)) % 2 == 0, 1.0, -1.0) * 250
    hr = hr + np.where(label_hr == classes.index("built-up"), texture, 0.0)[None]
    hr = hr + rng.normal(0, 4, hr.shape)
    ms = hr.reshape(bands, h, ratio, w, ratio).mean(axis=(2, 4))
    pan = hr[1:7].mean(0, keepdims=True) if bands == 8 else hr.mean(0, keepdims=True)
    truth = {c: float((label == i).mean()) for i, c in enumerate(classes)}
    return np.clip(ms, 1, 2047), np.clip(pan, 1, 2047), truth
