"""Figures people want to look at: side-by-side true-colour quicklooks with one stretch and a
zoomed inset, absolute-error maps against the reference, and per-band spectral profiles.

All images are ``(C, H, W)`` arrays on the same grid; ``rgb`` gives the 0-based R, G, B band
indices (``Sensor.rgb``). Files are written atomically as PNG or PDF (by suffix).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .._deps import require
from ..io.atomic import atomic_path

__all__ = ["comparison_figure", "spectral_profile_figure"]


def _plt():
    mpl = require("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _stretch_limits(rgb: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> tuple[np.ndarray, np.ndarray]:
    flat = rgb.reshape(3, -1)
    return np.percentile(flat, lo, axis=1), np.percentile(flat, hi, axis=1)


def _to_rgb(img: np.ndarray, rgb: Sequence[int], limits) -> np.ndarray:
    lo, hi = limits
    x = img[list(rgb)].astype(np.float64)
    x = (x - lo[:, None, None]) / np.maximum(hi - lo, 1e-12)[:, None, None]
    return np.clip(x, 0, 1).transpose(1, 2, 0)


def _save(fig, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or "png"
    if fmt not in ("png", "pdf"):
        raise ValueError(f"figure format {fmt!r} not supported: use .png or .pdf")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    _plt().close(fig)
    return path


def comparison_figure(images: dict[str, np.ndarray], rgb: Sequence[int], out: str | os.PathLike,
                      reference: np.ndarray | None = None, zoom: tuple[int, int, int] | None = None,
                      panel_inches: float = 2.5, dpi: int = 100, title: str | None = None) -> Path:
    """Quicklooks of each image (and the reference, first) with one percentile stretch (1-99 %
    of the reference, or of the first image), a zoomed inset of ``zoom = (row, col, size)``
    (default: the centre quarter) in each panel's lower right, and, with a reference, a second
    row of mean absolute error over bands (one colour scale for all methods).

    The figure is ``panel_inches * dpi`` pixels per panel: ``(n + ref) * panel_inches * dpi``
    wide and 1 or 2 panels high.
    """
    plt = _plt()
    if not images:
        raise ValueError("no images to show")
    panels = ([("reference", reference)] if reference is not None else []) + list(images.items())
    shape = panels[0][1].shape
    for name, a in panels:
        if a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {shape} like the others")
    h, w = shape[1:]
    base = reference if reference is not None else panels[0][1]
    limits = _stretch_limits(np.asarray(base)[list(rgb)])
    if zoom is None:
        size = max(8, min(h, w) // 4)
        zoom = ((h - size) // 2, (w - size) // 2, size)
    zr, zc, zs = zoom
    n_rows = 2 if reference is not None else 1
    fig, axes = plt.subplots(n_rows, len(panels), squeeze=False,
                             figsize=(panel_inches * len(panels), panel_inches * n_rows))
    for k, (name, a) in enumerate(panels):
        ax = axes[0, k]
        ax.imshow(_to_rgb(np.asarray(a), rgb, limits), interpolation="nearest")
        ax.add_patch(plt.Rectangle((zc - 0.5, zr - 0.5), zs, zs, fill=False, color="yellow",
                                   linewidth=0.8))
        inset = ax.inset_axes([0.6, 0.0, 0.4, 0.4])
        inset.imshow(_to_rgb(np.asarray(a)[:, zr:zr + zs, zc:zc + zs], rgb, limits),
                     interpolation="nearest")
        inset.set_xticks([]), inset.set_yticks([])
        for spine in inset.spines.values():
            spine.set_color("yellow")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    if reference is not None:
        errs = {name: np.abs(np.asarray(a, np.float64) - reference).mean(0) for name, a in panels[1:]}
        vmax = max(float(np.percentile(e, 99)) for e in errs.values()) or 1.0
        axes[1, 0].axis("off")
        axes[1, 0].text(0.5, 0.5, "mean |error|\nover bands\n(0 to %.4g)" % vmax,
                        ha="center", va="center", fontsize=8, transform=axes[1, 0].transAxes)
        for k, (name, e) in enumerate(errs.items(), start=1):
            axes[1, k].imshow(e, cmap="inferno", vmin=0, vmax=vmax, interpolation="nearest")
            axes[1, k].set_title(f"|{name} - ref|", fontsize=8)
            axes[1, k].axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9 if title else 0.93,
                        wspace=0.03, hspace=0.12)
    return _save(fig, out, dpi)


def spectral_profile_figure(images: dict[str, np.ndarray], out: str | os.PathLike,
                            reference: np.ndarray | None = None,
                            region: tuple[int, int, int] | None = None,
                            band_names: Sequence[str] | None = None, inches=(9.0, 3.2),
                            dpi: int = 100) -> Path:
    """Mean value per band over ``region = (row, col, size)`` (default: the whole image) for
    each image, the reference as a thick black line; with a reference, a second panel of the
    mean absolute error per band. ``inches * dpi`` pixels."""
    plt = _plt()
    with_err = reference is not None
    fig, axes = plt.subplots(1, 2 if with_err else 1, figsize=inches, squeeze=False)
    ax = axes[0, 0]
    first = next(iter(images.values()))
    c = first.shape[0]
    sel = (slice(None),) if region is None else (
        slice(None), slice(region[0], region[0] + region[2]), slice(region[1], region[1] + region[2]))
    x = np.arange(c)
    labels = band_names or [str(i + 1) for i in x]
    if with_err:
        ax.plot(x, np.asarray(reference)[sel].reshape(c, -1).mean(1), "k-", lw=2.5,
                label="reference")
    for name, a in images.items():
        ax.plot(x, np.asarray(a)[sel].reshape(c, -1).mean(1), marker="o", ms=3, lw=1, label=name)
    ax.set_ylabel("mean value (input scale)")
    ax.set_title("spectral profile" + ("" if region is None else f" of {region[2]} px region"),
                 fontsize=9)
    ax.legend(fontsize=7)
    if with_err:
        e = axes[0, 1]
        for name, a in images.items():
            err = np.abs(np.asarray(a, np.float64) - reference)[sel].reshape(c, -1).mean(1)
            e.plot(x, err, marker="o", ms=3, lw=1, label=name)
        e.set_ylabel("mean |error| (input scale)")
        e.set_title("per-band error against the reference", fontsize=9)
    for a in axes[0]:
        a.set_xticks(x)
        a.set_xticklabels(labels, rotation=30, fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi)
