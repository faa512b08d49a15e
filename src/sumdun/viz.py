"""Quicklooks without plotting dependencies: percentile stretch and a minimal PNG writer."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .io.atomic import atomic_path

__all__ = ["stretch", "true_colour", "write_png", "png_bytes", "side_by_side"]


def stretch(img: np.ndarray, valid: np.ndarray | None = None, lo: float = 2.0,
            hi: float = 98.0, limits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-band linear stretch of ``(C, H, W)`` between the ``lo``/``hi`` percentiles of the
    valid pixels, to uint8 ``(H, W, C)``. Returns the image and the ``(C, 2)`` limits used, so
    several images can share one stretch (pass ``limits``)."""
    a = np.asarray(img, dtype=np.float64)
    if limits is None:
        mask = np.ones(a.shape[1:], bool) if valid is None else valid
        vals = a[:, mask] if mask.any() else a.reshape(a.shape[0], -1)
        limits = np.stack([np.percentile(vals, lo, axis=1), np.percentile(vals, hi, axis=1)], 1)
    span = np.maximum(limits[:, 1] - limits[:, 0], 1e-12)
    out = (a - limits[:, :1, None]) / span[:, None, None]
    out = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if valid is not None:
        out[:, ~valid] = 0
    return np.moveaxis(out, 0, -1), limits


def true_colour(img: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """``(3, H, W)`` red, green, blue bands of a ``(C, H, W)`` image."""
    return np.asarray(img)[list(rgb)]


def side_by_side(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Concatenate ``(H, W, 3)`` uint8 images horizontally with a white gap."""
    h = max(i.shape[0] for i in images)
    parts = []
    for k, im in enumerate(images):
        pad = np.zeros((h, im.shape[1], 3), np.uint8)
        pad[: im.shape[0]] = im
        parts.append(pad)
        if k < len(images) - 1:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write ``(H, W, 3)`` or ``(H, W)`` uint8 as PNG (stdlib zlib), atomically."""
    png = png_bytes(rgb)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return Path(path)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode ``(H, W, 3)`` or ``(H, W)`` uint8 as PNG bytes (8-bit RGB, stdlib zlib)."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {a.shape}")
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
