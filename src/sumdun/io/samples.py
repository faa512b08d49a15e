"""The real WorldView-2 and WorldView-3 sample scenes of the PyPI package ``dgsamples``.

The imagery is DigitalGlobe's, licensed for use but not redistribution: it is read from the
installed package, never copied into this repository. Both scenes are 8-band, 11-bit, 4:1,
UTM 13N (Longmont, Colorado); zero marks pixels outside the image (nodata).
"""
from __future__ import annotations

from pathlib import Path

from .._deps import package_dir
from .geotiff import read_geotiff_pair
from .scene import ScenePair

__all__ = ["SAMPLES", "list_samples", "sample_paths", "load_sample"]

#: sample name -> (dgsamples folder, sensor key)
SAMPLES = {"wv2": ("wv2_longmont_1k", "wv2"), "wv3": ("wv3_longmont_1k", "wv3")}


def list_samples() -> list[str]:
    return list(SAMPLES)


def _package_dir() -> Path:
    return package_dir("dgsamples", "the sample scenes come from the PyPI package dgsamples; "
                       "install it with: pip install 'sumdun[samples]' (or pip install dgsamples)")


def _key(name: str) -> str:
    key = name.lower().replace("-", "").replace("worldview", "wv")
    if key not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; available: {', '.join(SAMPLES)}")
    return key


def sample_paths(name: str) -> tuple[Path, Path]:
    """``(ms_tif, pan_tif)`` of the installed dgsamples scene ``name`` (``"wv2"`` or ``"wv3"``)."""
    key = _key(name)
    root = _package_dir() / SAMPLES[key][0]
    ms = sorted(root.glob("*_MUL/*.TIF"))
    pan = sorted(root.glob("*_PAN/*.TIF"))
    if not ms or not pan:
        raise FileNotFoundError(f"dgsamples is installed but {root} lacks the MUL/PAN GeoTIFFs; "
                                "reinstall it: pip install --force-reinstall dgsamples")
    return ms[0], pan[0]


def load_sample(name: str) -> ScenePair:
    """Read a dgsamples scene as a :class:`ScenePair` with zero as nodata."""
    ms, pan = sample_paths(name)
    pair = read_geotiff_pair(ms, pan, sensor=SAMPLES[_key(name)][1], nodata=0)
    pair.meta["sample"] = name
    imd = next(ms.parent.glob("*.IMD"), None)
    if imd is not None:  # acquisition geometry (sun elevation, off-nadir angle)
        from .extra import read_imd

        pair.meta.update(read_imd(imd))
    pair.meta["licence"] = "DigitalGlobe sample imagery (dgsamples): do not redistribute"
    return pair
