"""Toolbox-style MATLAB ``.mat`` files: H x W x C arrays such as ``I_MS``, ``I_MS_LR``, ``I_PAN``,
``I_GT``. Both classic (v5, via scipy) and v7.3 (HDF5, via h5py) files are read."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..sensors import Sensor, get_sensor
from .scene import SceneError, ScenePair

__all__ = ["MAT_NAMES", "read_mat", "read_mat_pair"]

#: Toolbox variable -> our name.
MAT_NAMES = {"I_MS_LR": "ms", "I_MS": "lms", "I_PAN": "pan", "I_GT": "gt"}


def _is_hdf5(p: Path) -> bool:
    with open(p, "rb") as f:  # HDF5 signature at 0, or after MATLAB's 512-byte user block
        head = f.read(520)
    sig = b"\x89HDF\r\n\x1a\n"
    return head[:8] == sig or head[512:520] == sig


def _load(p: Path) -> dict[str, np.ndarray]:
    if _is_hdf5(p):  # v7.3: MATLAB stores arrays column-major, so h5py sees them transposed
        from .._deps import require

        h5py = require("h5py")
        with h5py.File(p, "r") as f:
            return {k: np.asarray(f[k]).T for k in f.keys() if hasattr(f[k], "shape")}
    import scipy.io

    try:
        raw = scipy.io.loadmat(p)
    except Exception as err:  # scipy raises ValueError, IndexError, MatReadError, ...
        raise SceneError(f"cannot read {p} as a MATLAB file ({err}); is the file complete?") \
            from err
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def read_mat(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a toolbox ``.mat`` file; arrays come back channel-first ``(C, H, W)``.

    Known variables are renamed (``I_MS_LR`` -> ``ms``, ``I_MS`` -> ``lms``, ``I_PAN`` -> ``pan``,
    ``I_GT`` -> ``gt``); other 2-D/3-D numeric arrays keep their MATLAB name.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f".mat file not found: {p}")
    out = {}
    for k, v in _load(p).items():
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "uif" or v.ndim not in (2, 3):
            continue
        a = v[None] if v.ndim == 2 else np.moveaxis(v, -1, 0)
        out[MAT_NAMES.get(k, k)] = np.ascontiguousarray(a)
    if not out:
        raise SceneError(f"{p} holds no image arrays (expected {', '.join(MAT_NAMES)})")
    return out


def read_mat_pair(path: str | os.PathLike, sensor: str | Sensor | None = None, ratio: int = 4
                  ) -> ScenePair:
    """An MS + PAN pair from a ``.mat`` file (``I_MS_LR`` + ``I_PAN``, or for a file holding
    only the MS at its own resolution, ``I_MS`` + ``I_PAN`` when their sizes differ by ``ratio``)."""
    d = read_mat(path)
    if "pan" not in d:
        raise SceneError(f"{path} has no I_PAN variable")
    pan = d["pan"]
    ms = d.get("ms")
    if ms is None and "lms" in d and d["lms"].shape[-1] * ratio == pan.shape[-1]:
        ms = d["lms"]
    if ms is None:
        raise SceneError(f"{path} has no low-resolution MS (I_MS_LR)")
    if pan.shape[-2:] != (ms.shape[-2] * ratio, ms.shape[-1] * ratio):
        raise SceneError(f"{path}: I_PAN {pan.shape[-2:]} is not {ratio}x I_MS_LR "
                         f"{ms.shape[-2:]}; pass the right ratio")
    s = get_sensor("generic" if sensor is None else sensor)
    try:
        s.gains_for(ms.shape[0])
    except ValueError as err:
        raise SceneError(f"{path}: {err}") from err
    meta = {"path": str(path)}
    if "gt" in d:
        meta["gt"] = d["gt"]
    return ScenePair(ms=ms, pan=pan, sensor=s, ratio=ratio, meta=meta)
