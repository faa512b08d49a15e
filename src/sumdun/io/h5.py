"""PanCollection ``.h5`` files: ``gt``, ``ms``, ``lms``, ``pan`` as N x C x H x W arrays."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require
from ..sensors import Sensor, get_sensor
from .atomic import atomic_path
from .scene import SceneError, ScenePair

__all__ = ["PANCOLLECTION_KEYS", "read_h5", "write_h5", "read_h5_pair"]

PANCOLLECTION_KEYS = ("gt", "ms", "lms", "pan")


def read_h5(path: str | os.PathLike, keys=PANCOLLECTION_KEYS, index: int | slice | None = None
            ) -> dict[str, Any]:
    """Read PanCollection arrays (those of ``keys`` present) and the file attributes.

    Returns ``{key: ndarray (N, C, H, W) or the selected samples, ..., "attrs": dict}``.
    The file is closed before returning.
    """
    h5py = require("h5py")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"h5 file not found: {p}")
    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise SceneError(f"cannot open {p} as HDF5 ({err}); is the file complete?") from err
    with f:
        out: dict[str, Any] = {}
        for k in keys:
            if k in f:
                d = f[k]
                if d.ndim != 4:
                    raise SceneError(f"{p}:{k} has shape {d.shape}; PanCollection arrays are "
                                     "N x C x H x W")
                out[k] = d[()] if index is None else d[index]
        if not any(k in out for k in keys):
            raise SceneError(f"{p} holds none of {list(keys)}; found {list(f.keys())}")
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return out


def write_h5(path: str | os.PathLike, arrays: dict[str, np.ndarray],
             attrs: dict[str, Any] | None = None, compression: str | None = "gzip") -> Path:
    """Write arrays (N x C x H x W) and attributes to ``path`` atomically."""
    h5py = require("h5py")
    for k, a in arrays.items():
        if np.asarray(a).ndim != 4:
            raise ValueError(f"{k} must be N x C x H x W, got shape {np.shape(a)}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, a in arrays.items():
                f.create_dataset(k, data=np.asarray(a), compression=compression)
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
    return Path(path)


def read_h5_pair(path: str | os.PathLike, index: int = 0, sensor: str | Sensor | None = None,
                 ratio: int = 4) -> ScenePair:
    """Sample ``index`` of a PanCollection file as a :class:`ScenePair` (``ms`` + ``pan``).

    The sensor comes from ``sensor`` or the file's ``sensor`` attribute (generic otherwise).
    """
    d = read_h5(path, keys=("ms", "pan", "gt"), index=index)
    if "ms" not in d or "pan" not in d:
        raise SceneError(f"{path} needs 'ms' and 'pan' datasets for a scene pair")
    attrs = d["attrs"]
    s = get_sensor(sensor or attrs.get("sensor", "generic"))
    ms, pan = d["ms"], d["pan"]
    if pan.shape[-1] != ms.shape[-1] * ratio or pan.shape[-2] != ms.shape[-2] * ratio:
        raise SceneError(f"{path}: pan {pan.shape[-2:]} is not {ratio}x ms {ms.shape[-2:]}")
    s.gains_for(ms.shape[0])
    meta = {"path": str(path), "index": index}
    if "gt" in d:
        meta["gt"] = d["gt"]
    return ScenePair(ms=ms, pan=pan, sensor=s, ratio=ratio, meta=meta)
