"""Torch-free numpy twins of the :mod:`sumdun.degrade` operators that BT-H needs, so that
``sumdun fuse --method bt-h`` (and ``fuse()`` on numpy arrays) never imports torch: 1.3 to 1.8 s
of a 3-second command on this machine.

Same algorithms, same taps (:mod:`sumdun.kernels`), same dtype rules (float32 in, float32
images out; moments summed in float64): ``interp23tap`` as dense products of blocks with a
banded block matrix along each axis (BLAS), its adjoint and ``U^T U`` the same way, and the
replicate-padded low-pass through numpy's FFT. ``tests/test_classical.py`` checks each against
the torch operator and BT-H against the toolbox's values.

Images are ``(C, H, W)`` numpy float arrays (one image, not a batch).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .kernels import (_check_pow2_ratio, _fft_size, interp23tap_gram_taps, interp23tap_taps)

__all__ = ["interp23tap", "interp23tap_adjoint", "interp23tap_gram", "lowpass_replicate",
           "inner_products64", "sums64"]

#: MS pixels per dense block of the banded products (cache-sized)
BLOCK = 32


@lru_cache(maxsize=16)
def _bank(ratio: int, kind: str, dtype: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(bank, bank_t, halo)``: the banded block matrix ``(BLOCK + 2*halo, ratio*BLOCK)``
    mapping a block of input samples (with ``halo`` on each side) to its ``ratio*BLOCK``
    outputs, and its transpose (contiguous: BLAS is several times slower on the transposed
    view), for the interpolator (``kind="u"``) or ``U^T U`` (``"gram"``, ratio 1)."""
    taps, halo = interp23tap_taps(ratio) if kind == "u" else interp23tap_gram_taps(ratio)
    r, width = taps.shape
    bank = np.zeros((BLOCK + width - 1, r * BLOCK), dtype=dtype)
    for i in range(BLOCK):
        bank[i:i + width, r * i:r * (i + 1)] = taps.T
    bank_t = np.ascontiguousarray(bank.T)
    bank.setflags(write=False)
    bank_t.setflags(write=False)
    return bank, bank_t, halo


def _circular(x: np.ndarray, halo: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    return np.take(x, np.arange(-halo, n + halo) % n, axis=axis)


def _along_last(x: np.ndarray, bank: np.ndarray, bank_t: np.ndarray, halo: int
                ) -> np.ndarray:
    """``(M, n) -> (M, r*n)``: the banded operator along the last axis, circular borders."""
    m, n = x.shape
    r = bank.shape[1] // BLOCK
    xp = _circular(x, halo, 1)
    out = np.empty((m, r * n), dtype=x.dtype)
    for a in range(0, n, BLOCK):
        e = min(a + BLOCK, n)
        # assigned, not out=: numpy's matmul into a column slice is 20x slower
        out[:, r * a:r * e] = xp[:, a:e + 2 * halo] @ bank[:e - a + 2 * halo, :r * (e - a)]
    return out


def _along_first(x: np.ndarray, bank: np.ndarray, bank_t: np.ndarray, halo: int,
                 out: np.ndarray | None = None) -> np.ndarray:
    """``(n, M) -> (r*n, M)``: the banded operator along the first axis, circular borders;
    each block of output rows written once, in place (into ``out`` when given: no temporary
    and no copy of the big output)."""
    n, m = x.shape
    r = bank.shape[1] // BLOCK
    xp = _circular(x, halo, 0)
    if out is None:
        out = np.empty((r * n, m), dtype=x.dtype)
    for a in range(0, n, BLOCK):
        e = min(a + BLOCK, n)
        np.matmul(bank_t[:r * (e - a), :e - a + 2 * halo], xp[a:e + 2 * halo],
                  out=out[r * a:r * e])
    return out


def _adjoint_last(y: np.ndarray, bank: np.ndarray, bank_t: np.ndarray, halo: int
                  ) -> np.ndarray:
    """The transpose of :func:`_along_last`: ``(M, r*n) -> (M, n)``."""
    m = y.shape[0]
    r = bank.shape[1] // BLOCK
    n = y.shape[1] // r
    acc = np.zeros((m, n + 2 * halo), dtype=y.dtype)
    for a in range(0, n, BLOCK):
        e = min(a + BLOCK, n)
        acc[:, a:e + 2 * halo] += y[:, r * a:r * e] @ bank_t[:r * (e - a), :e - a + 2 * halo]
    return _fold(acc, halo, n)


def _fold(acc: np.ndarray, halo: int, n: int) -> np.ndarray:
    """Add the circular halo columns of ``acc (M, n + 2*halo)`` back onto their samples."""
    out = acc[:, halo:halo + n].copy()
    idx = np.arange(-halo, 0) % n
    for k in range(halo):          # column k of acc is sample k - halo (mod n)
        out[:, idx[k]] += acc[:, k]
        out[:, (n + k) % n] += acc[:, halo + n + k]
    return out


def interp23tap(ms: np.ndarray, ratio: int = 4) -> np.ndarray:
    """:func:`sumdun.degrade.interp23tap` of ``(C, h, w)`` -> ``(C, ratio*h, ratio*w)``."""
    _check_pow2_ratio(ratio)
    ops = _bank(int(ratio), "u", ms.dtype.name)
    out = np.empty((ms.shape[0], ratio * ms.shape[1], ratio * ms.shape[2]), dtype=ms.dtype)
    for c in range(ms.shape[0]):          # the small column pass first, then the big row pass
        _along_first(_along_last(ms[c], *ops), *ops, out=out[c])
    return out


def interp23tap_adjoint(img: np.ndarray, ratio: int = 4) -> np.ndarray:
    """:func:`sumdun.degrade.interp23tap_adjoint`: ``(C, ratio*h, ratio*w)`` -> ``(C, h, w)``."""
    _check_pow2_ratio(ratio)
    ops = _bank(int(ratio), "u", img.dtype.name)
    return np.stack([_adjoint_last(_adjoint_last(band, *ops).T, *ops).T for band in img])


def interp23tap_gram(ms: np.ndarray, ratio: int = 4) -> np.ndarray:
    """:func:`sumdun.degrade.interp23tap_gram` of one image: ``(C, C)`` float64, the inner
    products of the upsampled bands computed at MS resolution (``<x_k, U^T U x_l>``)."""
    _check_pow2_ratio(ratio)
    ops = _bank(int(ratio), "gram", ms.dtype.name)
    filtered = np.stack([_along_first(_along_last(band, *ops), *ops) for band in ms])
    return inner_products64(ms, filtered)


@lru_cache(maxsize=16)
def _symmetric_spectrum(kernel_key: bytes, n: int, shape: tuple[int, int], dtype: str
                        ) -> np.ndarray:
    """Zero-phase real spectrum ``(shape[0], shape[1] // 2 + 1)`` of a kernel symmetric along
    both axes (``C1 k C2^T`` with cosine matrices), as in :mod:`sumdun.degrade`."""
    k = np.frombuffer(kernel_key, dtype=np.float64).reshape(n, n)
    d = np.arange(n) - n // 2

    def cos(size: int, count: int) -> np.ndarray:
        f = np.arange(count)
        return np.cos(2 * np.pi * (np.outer(f, d) % size) / size)

    spec = (cos(shape[0], shape[0]) @ k @ cos(shape[1], shape[1] // 2 + 1).T).astype(dtype)
    spec.setflags(write=False)
    return spec


def lowpass_replicate(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """:func:`sumdun.degrade.mtf_filter` of ``(C, H, W)`` with one kernel ``(N, N)`` symmetric
    along both axes (the toolbox's MTF and Gaussian low-passes), replicate borders, by FFT."""
    n = kernel.shape[-1]
    if kernel.shape != (n, n) or n % 2 == 0 or not (
            np.array_equal(kernel, kernel[::-1]) and np.array_equal(kernel, kernel[:, ::-1])):
        raise ValueError(f"kernel must be (N, N), N odd, symmetric; got {kernel.shape}")
    p = n // 2
    c, h, w = img.shape
    shape = (_fft_size(h + 2 * p), _fft_size(w + 2 * p))
    spec = _symmetric_spectrum(np.ascontiguousarray(kernel, np.float64).tobytes(), n, shape,
                               img.dtype.name)
    out = np.empty_like(img)
    for ci in range(c):
        padded = np.pad(img[ci], p, mode="edge")
        f = np.fft.rfft2(padded, s=shape)
        f *= spec
        out[ci] = np.fft.irfft2(f, s=shape)[p:p + h, p:p + w]
    return out


def inner_products64(a: np.ndarray, b: np.ndarray, rows: int = 32) -> np.ndarray:
    """``G[k, l] = sum over pixels of a[k] * b[l]`` in float64 for ``a (C, H, W)``,
    ``b (K, H, W)``: ``(C, K)``, converted ``rows`` rows at a time (no float64 copy)."""
    g = np.zeros((a.shape[0], b.shape[0]))
    for r in range(0, a.shape[1], rows):
        sa = a[:, r:r + rows].astype(np.float64).reshape(a.shape[0], -1)
        sb = sa if b is a else b[:, r:r + rows].astype(np.float64).reshape(b.shape[0], -1)
        g += sa @ sb.T
    return g


def sums64(a: np.ndarray, rows: int = 32) -> np.ndarray:
    """Per-band sums of ``a (C, H, W)`` in float64, ``(C,)``."""
    return sum(a[:, r:r + rows].astype(np.float64).reshape(a.shape[0], -1).sum(-1)
               for r in range(0, a.shape[1], rows))
