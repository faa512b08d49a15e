"""Training augmentations that simulate products the data do not contain.

:func:`radiometric_augment` gives a sample another product's radiometry: per-band gains and
offsets (another sensor's calibration, a per-band stretch), a PAN gain and offset, and, with
the stated probability, 8-bit quantisation of the whole product (an 8-bit stretched
delivery). Gains and offsets are applied to the reference and the MS alike, so the MS stays
the reference's degraded version (the MTF low-pass sums to 1 and decimation is linear); the
quantisation is applied to all three, as in a delivered product.

:func:`band_augment` gives a batch another sensor's band set: a random subset of 3 to all of
its bands, in random order (MS and reference alike; the PAN keeps its own response, as a
sensor whose PAN covers bands it does not deliver).

:func:`mtf_augment` gives a sample another sensor's optics: its MS is made again from the
reference by Wald's protocol with MTF gains at Nyquist drawn per band from the range of real
sensors (0.2 to 0.4: GeoEye-1 and WorldView-4 0.23, IKONOS 0.26-0.29, QuickBird 0.22-0.34,
WorldView-2/3 0.27-0.365), instead of the sensor's own.

:func:`pan_augment` gives a sample another PAN spectral response: part of its PAN is replaced
by a random positive combination of the reference's bands (on the PAN grid at reduced
resolution), matched to the PAN's mean, as a sensor whose PAN weighs the bands differently.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["radiometric_augment", "band_augment", "mtf_augment", "pan_augment"]

#: range of the MS MTF gains at Nyquist drawn by :func:`mtf_augment`
MTF_GAINS = (0.2, 0.4)
#: range of the share of the PAN replaced by :func:`pan_augment`
PAN_MIX = (0.25, 0.75)

#: per-band gain range and offset range (fraction of the sample's mean)
GAINS = (0.75, 1.25)
OFFSETS = (-0.03, 0.03)


def _quantise(x: torch.Tensor, top: torch.Tensor, levels: int = 255) -> torch.Tensor:
    return torch.round(x / top * levels).clamp(0, levels) * (top / levels)


def radiometric_augment(ms: torch.Tensor, pan: torch.Tensor, gt: torch.Tensor | None,
                        p: float, generator: torch.Generator, p_8bit: float = 0.5):
    """``(ms, pan, gt)`` ``(B, C, h, w)``, ``(B, 1, H, W)``, ``(B, C, H, W)`` (or None) with
    each sample, with probability ``p``, given per-band gains ``U(0.75, 1.25)`` and offsets
    ``U(-0.03, 0.03) x`` its MS mean (MS and reference alike), a PAN gain and offset from the
    same ranges and, with probability ``p_8bit``, 8-bit quantisation (255 levels up to the
    sample's maximum). Values stay non-negative. The inputs are not modified."""
    b, c = ms.shape[:2]
    if p <= 0:
        return ms, pan, gt
    dev, dt = ms.device, ms.dtype

    def draw(*shape, lo, hi):
        return (torch.rand(*shape, generator=generator) * (hi - lo) + lo).to(dev, dt)

    pick = (torch.rand(b, generator=generator) < p).to(dev)
    q8 = (torch.rand(b, generator=generator) < p_8bit).to(dev) & pick
    mean = ms.flatten(1).mean(1).view(b, 1, 1, 1)
    gain = torch.where(pick.view(b, 1, 1, 1), draw(b, c, 1, 1, lo=GAINS[0], hi=GAINS[1]), 1.0)
    off = torch.where(pick.view(b, 1, 1, 1), draw(b, c, 1, 1, lo=OFFSETS[0], hi=OFFSETS[1]),
                      0.0) * mean
    pgain = torch.where(pick.view(b, 1, 1, 1), draw(b, 1, 1, 1, lo=GAINS[0], hi=GAINS[1]), 1.0)
    poff = torch.where(pick.view(b, 1, 1, 1), draw(b, 1, 1, 1, lo=OFFSETS[0], hi=OFFSETS[1]),
                       0.0) * mean
    ms2 = (ms * gain + off).clamp(min=0)
    pan2 = (pan * pgain + poff).clamp(min=0)
    gt2 = None if gt is None else (gt * gain + off).clamp(min=0)
    if q8.any():
        sel = q8.view(b, 1, 1, 1)
        top = torch.maximum(ms2.flatten(1).amax(1), pan2.flatten(1).amax(1))
        if gt2 is not None:
            top = torch.maximum(top, gt2.flatten(1).amax(1))
        top = top.clamp(min=torch.finfo(dt).tiny).view(b, 1, 1, 1)
        ms2 = torch.where(sel, _quantise(ms2, top), ms2)
        pan2 = torch.where(sel, _quantise(pan2, top), pan2)
        if gt2 is not None:
            gt2 = torch.where(sel, _quantise(gt2, top), gt2)
    return ms2, pan2, gt2


def band_augment(ms: torch.Tensor, gt: torch.Tensor | None, p: float,
                 generator: torch.Generator, least: int = 3):
    """``(ms, gt)`` ``(B, C, h, w)``, ``(B, C, H, W)`` (or None), with probability ``p`` for the
    whole batch (its samples share a band count), reduced to ``k`` of their bands, ``k`` drawn
    from ``least .. C``, in a random order: ``ms[:, idx]``, ``gt[:, idx]``. Batches with fewer
    than ``least`` bands are left alone. The inputs are not modified."""
    c = ms.shape[1]
    if p <= 0 or c < least or not float(torch.rand(1, generator=generator)) < p:
        return ms, gt
    k = int(torch.randint(least, c + 1, (1,), generator=generator))
    idx = torch.randperm(c, generator=generator)[:k].to(ms.device)
    return ms[:, idx], None if gt is None else gt[:, idx]


def mtf_augment(ms: torch.Tensor, gt: torch.Tensor | None, p: float,
                generator: torch.Generator, gains: tuple = MTF_GAINS):
    """``ms`` ``(B, C, h, w)`` with each sample, with probability ``p``, made again from its
    reference ``gt`` ``(B, C, H, W)`` as ``decimate(mtf_filter(gt, MTF(g)), H / h)``: the
    toolbox's Gaussian MTF filter with a Nyquist gain ``g`` per band drawn from ``U(gains)``
    (rounded to 0.005), the toolbox decimation phase (:func:`sumdun.degrade.wald`). Without a
    reference, or with ``p`` 0, ``ms`` comes back as it is (nothing is drawn). The inputs are
    not modified."""
    if p <= 0 or gt is None:
        return ms
    from ..degrade import decimate, mtf_filter
    from ..kernels import mtf_kernel  # cached per (gain, ratio)

    b, c = ms.shape[:2]
    ratio = gt.shape[-1] // ms.shape[-1]
    pick = torch.rand(b, generator=generator) < p
    g = torch.rand(b, c, generator=generator, dtype=torch.float64) * (gains[1] - gains[0]) \
        + gains[0]
    if not pick.any():
        return ms
    out = ms.clone()
    for i in pick.nonzero().flatten().tolist():
        k = np.stack([mtf_kernel(round(float(x) / 0.005) * 0.005, ratio) for x in g[i]])
        out[i] = decimate(mtf_filter(gt[i:i + 1], k), ratio)[0].to(ms.dtype)
    return out


def pan_augment(pan: torch.Tensor, gt: torch.Tensor | None, p: float,
                generator: torch.Generator, mix: tuple = PAN_MIX):
    """``pan`` ``(B, 1, H, W)`` with each sample, with probability ``p``, replaced by
    ``(1 - a) pan + a s mean(pan) / mean(s)``, ``s = sum_b w_b gt_b`` a response with band
    weights ``w`` drawn uniformly on the simplex (Dirichlet(1)) and ``a ~ U(mix)``; ``gt``
    ``(B, C, H, W)`` is the reference on the PAN's grid (reduced-resolution training). Without
    a reference, with another grid, or with ``p`` 0, ``pan`` comes back as it is (nothing is
    drawn). The inputs are not modified."""
    if p <= 0 or gt is None or gt.shape[-2:] != pan.shape[-2:]:
        return pan
    b, c = gt.shape[:2]
    pick = (torch.rand(b, generator=generator) < p).to(pan.device)
    w = -torch.log(torch.rand(b, c, generator=generator).clamp(min=1e-12))  # Dirichlet(1)
    w = (w / w.sum(1, keepdim=True)).to(gt.device, gt.dtype)
    a = (torch.rand(b, generator=generator) * (mix[1] - mix[0]) + mix[0]).to(pan.device,
                                                                              pan.dtype)
    s = (gt * w.view(b, c, 1, 1)).sum(1, keepdim=True)
    s = s * pan.mean((-2, -1), keepdim=True) / s.mean((-2, -1), keepdim=True).clamp(
        min=torch.finfo(s.dtype).tiny)
    mixed = (1 - a.view(b, 1, 1, 1)) * pan + a.view(b, 1, 1, 1) * s.to(pan.dtype)
    return torch.where(pick.view(b, 1, 1, 1), mixed, pan)
