"""The in-memory scene pair every reader returns."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DataError
from ..sensors import Sensor


class SceneError(DataError):
    """A scene's files cannot be used as an MS + PAN pair; the message names the fix."""


@dataclass
class ScenePair:
    """An MS + PAN pair at its native resolutions.

    Attributes:
        ms: ``(C, h, w)`` multispectral digital numbers (original dtype).
        pan: ``(1, H, W)`` panchromatic, ``H = ratio*h``, ``W = ratio*w``.
        sensor: the sensor entry (band names, bit depth, MTF gains).
        ratio: PAN/MS pixel-size ratio.
        ms_nodata, pan_nodata: nodata values (None when the files define none).
        crs: CRS (a ``rasterio.crs.CRS``) or None for non-georeferenced sources.
        ms_transform, pan_transform: affine geotransforms (``affine.Affine``) or None.
        band_names: MS band names (file descriptions, else the sensor's).
        meta: free-form provenance (paths, dataset keys).
    """

    ms: np.ndarray
    pan: np.ndarray
    sensor: Sensor
    ratio: int = 4
    ms_nodata: float | None = None
    pan_nodata: float | None = None
    crs: Any = None
    ms_transform: Any = None
    pan_transform: Any = None
    band_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ms.ndim != 3 or self.pan.ndim != 3 or self.pan.shape[0] != 1:
            raise SceneError(f"expected ms (C, h, w) and pan (1, H, W), got {self.ms.shape} "
                             f"and {self.pan.shape}")
        if not self.band_names:
            names = self.sensor.band_names
            if len(names) != self.ms.shape[0]:
                names = tuple(f"band{i + 1}" for i in range(self.ms.shape[0]))
            self.band_names = names

    @property
    def ms_valid(self) -> np.ndarray:
        """``(h, w)`` bool: MS pixels where no band equals the nodata value."""
        if self.ms_nodata is None:
            return np.ones(self.ms.shape[1:], bool)
        return ~np.any(self.ms == self.ms_nodata, axis=0)

    @property
    def pan_valid(self) -> np.ndarray:
        """``(H, W)`` bool: PAN pixels that are not nodata."""
        if self.pan_nodata is None:
            return np.ones(self.pan.shape[1:], bool)
        return self.pan[0] != self.pan_nodata

    def crop(self, row: int, col: int, height: int, width: int) -> "ScenePair":
        """The pair restricted to MS rows ``row:row+height`` and columns ``col:col+width`` (and
        the PAN pixels under them); geotransforms follow."""
        if row < 0 or col < 0 or row + height > self.ms.shape[1] or col + width > self.ms.shape[2] \
                or height < 1 or width < 1:
            raise ValueError(f"crop ({row}, {col}, {height}, {width}) is outside the MS image "
                             f"{self.ms.shape[1]} x {self.ms.shape[2]}")
        r = self.ratio
        ms_t = pan_t = None
        if self.ms_transform is not None:
            ms_t = self.ms_transform @ self.ms_transform.translation(col, row)
            pan_t = self.pan_transform @ self.pan_transform.translation(col * r, row * r)
        meta = {k: v for k, v in self.meta.items() if k != "gt"}
        meta["crop"] = (row, col, height, width)
        return replace(self, ms=self.ms[:, row:row + height, col:col + width],
                       pan=self.pan[:, row * r:(row + height) * r, col * r:(col + width) * r],
                       ms_transform=ms_t, pan_transform=pan_t, meta=meta)

    def valid_core(self, multiple: int = 1) -> "ScenePair":
        """Shrink the pair from its edges until no MS or PAN pixel is nodata, then to a size that
        is a multiple of ``multiple`` MS pixels (centred). For scenes whose nodata is a border."""
        r = self.ratio
        ok = self.ms_valid & self.pan_valid.reshape(self.ms.shape[1], r, self.ms.shape[2], r
                                                    ).all(axis=(1, 3))
        top, left, bottom, right = 0, 0, ok.shape[0], ok.shape[1]
        while top < bottom and left < right:
            core = ok[top:bottom, left:right]
            if core.all():
                break
            bad = [(~core[0]).sum(), (~core[-1]).sum(), (~core[:, 0]).sum(), (~core[:, -1]).sum()]
            k = int(np.argmax(bad))
            top, bottom, left, right = (top + (k == 0), bottom - (k == 1), left + (k == 2),
                                        right - (k == 3))
        h = (bottom - top) // multiple * multiple
        w = (right - left) // multiple * multiple
        if h < multiple or w < multiple:
            raise ValueError("the scene has no nodata-free core of the requested size")
        top += (bottom - top - h) // 2
        left += (right - left - w) // 2
        return self.crop(top, left, h, w)

    def describe(self) -> str:
        """One line for logs: sensor, sizes, nodata share."""
        nd_ms = 100.0 * (1 - self.ms_valid.mean())
        nd_pan = 100.0 * (1 - self.pan_valid.mean())
        return (f"{self.sensor.name}: MS {self.ms.shape[0]} x {self.ms.shape[1]} x "
                f"{self.ms.shape[2]} ({self.ms.dtype}), PAN {self.pan.shape[1]} x "
                f"{self.pan.shape[2]}, ratio {self.ratio}, nodata MS {self.ms_nodata} "
                f"({nd_ms:.2f}% of pixels), PAN {self.pan_nodata} ({nd_pan:.2f}%)")
