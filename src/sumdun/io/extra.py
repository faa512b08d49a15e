"""The extra real scenes of ``../shared/data`` (see its ``MANIFEST.md``), read in place.

PAirMax WorldView-2/3 (reduced-resolution products used as full-resolution pairs), SpaceNet
WorldView-3 Shanghai and WorldView-2 Rotterdam, Sentinel-2 (ratio 2: the six 20 m bands as MS,
the mean of the four 10 m bands as PAN). Their licences forbid copying them into this
repository: they are only ever read from the folder. ``SUMDUN_SHARED_DATA`` points elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..sensors import get_sensor
from .scene import ScenePair

__all__ = ["shared_data_root", "EXTRA_SCENES", "load_extra", "read_imd", "geometry_from_tags"]


def shared_data_root() -> Path | None:
    """``$SUMDUN_SHARED_DATA``, else ``../shared/data`` beside the repository; None if absent."""
    env = os.environ.get("SUMDUN_SHARED_DATA")
    cands = [Path(env)] if env else []
    here = Path(__file__).resolve()
    cands += [p / "shared" / "data" for p in here.parents[3:6]]
    for c in cands:
        if (c / "MANIFEST.md").exists():
            return c
    return None


#: name -> (kind, relative path(s), sensor key)
EXTRA_SCENES = {
    "pairmax-w2-miam-mix": ("pairmax", "pairmax/W2_Miam_Mix", "wv2"),
    "pairmax-w2-miam-urb": ("pairmax", "pairmax/W2_Miam_Urb", "wv2"),
    "pairmax-w3-muni-mix": ("pairmax", "pairmax/W3_Muni_Mix", "wv3"),
    "pairmax-w3-muni-nat": ("pairmax", "pairmax/W3_Muni_Nat", "wv3"),
    "pairmax-w3-muni-urb": ("pairmax", "pairmax/W3_Muni_Urb", "wv3"),
    "spacenet-wv3-shanghai": ("spacenet", "spacenet-wv3-shanghai", "wv3"),
    "spacenet-wv2-rotterdam-1": ("rotterdam", "spacenet-wv2-rotterdam/{}1.tif", "wv2"),
    "spacenet-wv2-rotterdam-2": ("rotterdam", "spacenet-wv2-rotterdam/{}2.tif", "wv2"),
    "spacenet-wv2-rotterdam-3": ("rotterdam", "spacenet-wv2-rotterdam/{}3.tif", "wv2"),
    "sentinel2-t33uub": ("sentinel", "sentinel2-dsen2/S2A_MSIL1C_20170527_T33UUB.mat", "s2"),
    "sentinel2-t49jgm": ("sentinel", "sentinel2-dsen2/S2B_MSIL1C_20171022_T49JGM.mat", "s2"),
}

#: Sentinel-2 20 m bands (MSI L1C), the MS of the ratio-2 pair
S2_20M = ("red_edge1", "red_edge2", "red_edge3", "nir_narrow", "swir1", "swir2")


#: metadata names (lower case, no separators) that carry the acquisition geometry: GeoTIFF tags
#: (``SUN_ELEVATION``, ``offNadirAngle``) and DigitalGlobe ``.IMD`` keys (``meanSunEl``)
_GEOMETRY = {"sunelevation": "sun_elevation", "meansunel": "sun_elevation",
             "sunel": "sun_elevation", "offnadir": "off_nadir", "offnadirangle": "off_nadir",
             "meanoffnadirviewangle": "off_nadir", "viewangle": "off_nadir"}


def geometry_from_tags(tags: dict) -> dict:
    """``sun_elevation`` / ``off_nadir`` (degrees) from metadata such as GeoTIFF tags
    ``SUN_ELEVATION``, ``sunElevation``, ``OFF_NADIR`` or ``.IMD`` keys ``meanSunEl``,
    ``meanOffNadirViewAngle`` (the first of each that reads as a number)."""
    out: dict = {}
    for k, v in tags.items():
        key = _GEOMETRY.get("".join(ch for ch in str(k).lower() if ch.isalnum()))
        if key and key not in out:
            try:
                out[key] = float(str(v).strip().rstrip(";").strip('"'))
            except ValueError:
                continue
    return out


def read_imd(path: str | os.PathLike) -> dict:
    """Acquisition geometry (``sun_elevation``, ``off_nadir``, degrees) from a DigitalGlobe
    ``.IMD`` file, whose lines read ``key = value;``."""
    pairs: dict = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        k, sep, v = line.strip().partition("=")
        if sep:
            pairs.setdefault(k.strip(), v)
    return geometry_from_tags(pairs)


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def load_extra(name: str, root: str | os.PathLike | None = None) -> ScenePair:
    """One extra scene as a :class:`ScenePair` (digital numbers; Sentinel-2 reflectance x 1e4).

    The ``meta`` dict holds ``source``, ``licence`` and, where the product has it, the
    acquisition geometry (:func:`read_imd`) and ground sampling distance ``gsd_m``.
    """
    if name not in EXTRA_SCENES:
        raise KeyError(f"unknown extra scene {name!r}; available: {', '.join(EXTRA_SCENES)}")
    base = Path(root) if root else shared_data_root()
    if base is None:
        raise FileNotFoundError("../shared/data is not on this machine (set SUMDUN_SHARED_DATA)")
    kind, rel, sensor = EXTRA_SCENES[name]
    meta: dict = {"source": name}
    if kind == "pairmax":
        folder = base / rel
        ms, pan = _read(folder / "RR" / "MS_LR.tif"), _read(folder / "RR" / "PAN.tif")
        meta.update(read_imd(folder / "MS.IMD"), licence="DigitalGlobe product terms (PAirMax, "
                    "local use only)", gsd_m=1.84)
        ratio = 4
    elif kind == "spacenet":
        folder = base / rel
        ms = _read(next(folder.glob("MUL_*.tif")))
        pan = _read(next(folder.glob("PAN_*.tif")))
        meta.update(licence="SpaceNet, CC BY-SA 4.0", gsd_m=0.31,
                    note="MS about 0.45 MS pixels off the PAN vertically")
        ratio = 4
    elif kind == "rotterdam":
        ms2 = _read(base / rel.format("ms"))
        c, h, w = ms2.shape
        ms = ms2.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))  # undo the 2x copy
        pan = _read(base / rel.format("pan"))
        meta.update(licence="SpaceNet 6 area, CC BY-SA 4.0 (imagery licence not stated)",
                    gsd_m=0.5)
        ratio = 4
    else:
        import h5py

        with h5py.File(base / rel, "r") as f:
            im20 = f["im20"][()].transpose(0, 2, 1)
            im10 = f["im10"][()].transpose(0, 2, 1)
        ms, pan = im20, im10.mean(0, keepdims=True)
        meta.update(licence="Copernicus Sentinel data, CC BY 4.0", gsd_m=10.0)
        ratio = 2
    ms = ms[:, : pan.shape[1] // ratio, : pan.shape[2] // ratio]
    pan = pan[:, : ms.shape[1] * ratio, : ms.shape[2] * ratio]
    if sensor == "s2":
        s = get_sensor("generic")
        return ScenePair(ms=ms, pan=pan, sensor=s, ratio=ratio, band_names=S2_20M, meta=meta)
    s = get_sensor(sensor)
    nodata = 0 if kind in ("rotterdam", "spacenet") else None  # black collars
    if ms.shape[0] == 4 and s.n_bands == 8:
        names = tuple(s.band_names[i] for i in s.subset4)
    else:
        names = s.band_names
    return ScenePair(ms=ms, pan=pan, sensor=s, ratio=ratio, band_names=names, meta=meta,
                     ms_nodata=nodata, pan_nodata=nodata)
