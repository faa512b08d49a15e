"""Tile grids with feathered overlap for fusing scenes of any size in bounded memory.

Along each axis the scene ``[0, n)`` (PAN pixels) is split into *cores* with boundaries
``a_0 = 0 < a_1 < ... < a_k = n``, ``a_i = i * tile + overlap``. Tile ``i`` is read over its
core grown by ``overlap`` on both sides (clipped to the scene) and its output is weighted by a
linear ramp across each ``2 * overlap`` wide zone centred on an inner core boundary; the
weights of neighbouring tiles sum to one, so the blend has no seams and, more than
``2 * overlap`` from any inner core boundary, the result is a single tile's output computed
with at least ``2 * overlap`` pixels of real context on every inner side.

Writes land on ``[i * tile, (i + 1) * tile)``: multiples of the tile, so a GeoTIFF whose block
size divides the tile receives every block exactly once. Memory: one tile plus a carry strip
of ``2 * overlap`` rows across the scene width.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

__all__ = ["AxisTiles", "axis_tiles", "TileBlender"]


@dataclass(frozen=True)
class AxisTiles:
    """Tiles along one axis: ``cores`` boundaries ``(k + 1,)`` and the overlap (pixels)."""

    n: int
    tile: int
    overlap: int
    cores: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.cores) - 1

    def read(self, i: int) -> tuple[int, int]:
        """Pixel range ``[start, stop)`` that tile ``i`` reads (core grown by the overlap)."""
        return (max(0, self.cores[i] - self.overlap),
                min(self.n, self.cores[i + 1] + self.overlap))

    def write(self, i: int) -> tuple[int, int]:
        """Range that is final once tiles ``0..i`` are blended (``[i*tile, (i+1)*tile)``)."""
        start = 0 if i == 0 else self.cores[i] - self.overlap
        stop = self.n if i == len(self) - 1 else self.cores[i + 1] - self.overlap
        return start, stop

    def weights(self, i: int) -> np.ndarray:
        """Feather weights ``(stop - start,)`` of tile ``i`` over its read range."""
        start, stop = self.read(i)
        w = np.ones(stop - start, dtype=np.float32)
        ramp = (np.arange(2 * self.overlap, dtype=np.float32) + 0.5) / (2 * self.overlap)
        if i > 0:
            w[: 2 * self.overlap] = ramp
        if i < len(self) - 1:
            w[-2 * self.overlap:] = ramp[::-1]
        return w


def axis_tiles(n: int, tile: int, overlap: int) -> AxisTiles:
    """Split ``n`` pixels into cores of ``tile`` (first ``tile + overlap``, last between
    ``tile / 2`` and ``1.5 tile``); one core when ``n`` is under about ``1.5 tile``."""
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0, got {tile} and {overlap}")
    if 4 * overlap > tile:
        raise ValueError(f"overlap {overlap} is more than a quarter of the tile {tile}; use a "
                         f"larger tile or an overlap <= {tile // 4}")
    inner = max(0, (n - overlap - tile // 2) // tile)  # number of inner boundaries
    cores = [0] + [i * tile + overlap for i in range(1, inner + 1)] + [n]
    if len(cores) > 2 and cores[-2] >= n:
        cores.pop(-2)
    return AxisTiles(n, tile, overlap, tuple(cores))


class TileBlender:
    """Blend tile outputs in raster order and hand back finished windows.

    Feed tiles row by row, left to right, with :meth:`add`; each call returns the window
    ``(row0, row1, col0, col1)`` and the ``(C, h, w)`` float32 block that is final, ready to
    write. Holds one carry strip ``(C, 2 * overlap, W)`` and one column carry.
    """

    def __init__(self, rows: AxisTiles, cols: AxisTiles, bands: int):
        self.rows, self.cols, self.bands = rows, cols, bands
        self._top = np.zeros((bands, 2 * rows.overlap, cols.n), np.float32)
        self._next_top = np.zeros_like(self._top)
        self._left: np.ndarray | None = None

    def tiles(self) -> Iterator[tuple[int, int]]:
        for i in range(len(self.rows)):
            for j in range(len(self.cols)):
                yield i, j

    def add(self, i: int, j: int, out: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray]:
        r0, r1 = self.rows.read(i)
        c0, c1 = self.cols.read(j)
        if out.shape != (self.bands, r1 - r0, c1 - c0):
            raise ValueError(f"tile ({i}, {j}) output {out.shape} != "
                             f"{(self.bands, r1 - r0, c1 - c0)}")
        o = self.rows.overlap
        y = out.astype(np.float32)  # a copy; weights differ from 1 only in the overlap zones
        if o:
            rw, cw = self.rows.weights(i), self.cols.weights(j)
            for zone in (slice(0, 2 * o), slice(-2 * o, None)):  # rows, then columns, as
                y[:, zone] *= rw[zone, None]                    # y * rw[:, None] * cw[None]
            for zone in (slice(0, 2 * o), slice(-2 * o, None)):
                y[:, :, zone] *= cw[None, zone]
        if j > 0:  # the previous tile's share of the left zone
            y[:, :, : 2 * o] += self._left
        w0, w1 = self.cols.write(j)
        if j < len(self.cols) - 1:
            self._left = y[:, :, w1 - c0:].copy()
        y = y[:, :, w0 - c0: w1 - c0]
        if i > 0:  # the previous tile row's share of the top zone
            y[:, : 2 * o] += self._top[:, :, w0:w1]
        h0, h1 = self.rows.write(i)
        if i < len(self.rows) - 1:
            self._next_top[:, :, w0:w1] = y[:, h1 - r0:]
            if j == len(self.cols) - 1:
                self._top, self._next_top = self._next_top, self._top
        return (h0, h1, w0, w1), y[:, h0 - r0: h1 - r0]
