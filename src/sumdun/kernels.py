"""Filter design of the toolbox (``genMTF.m``, ``LPfilterGauss.m``, ``interp23tap.m``): small
float64 numpy arrays, no torch, shared by :mod:`sumdun.degrade` (torch) and
:mod:`sumdun.degrade_numpy` (the torch-free operators of ``sumdun fuse --method bt-h``)."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .sensors import Sensor, get_sensor

__all__ = ["kaiser_window", "fspecial_gaussian", "fsamp2", "fwind1", "mtf_kernel", "mtf_kernels",
           "pan_mtf_kernel", "lp_gauss_kernel", "interp23tap_taps", "interp23tap_gram_taps",
           "CDF23"]

#: Half of the toolbox's 23-tap interpolator (centre first), ``interp23tap.m``.
_CDF23_HALF = 2.0 * np.array([0.5, 0.305334091185, 0, -0.072698593239, 0, 0.021809577942, 0,
                              -0.005192756653, 0, 0.000807762146, 0, -0.000060081482])
#: The full symmetric 23-tap kernel (centre tap 1, DC gain 2 per axis).
CDF23 = np.concatenate([_CDF23_HALF[:0:-1], _CDF23_HALF])


# --------------------------------------------------------------------------- MATLAB helpers
def kaiser_window(n: int, beta: float = 0.5) -> np.ndarray:
    """MATLAB ``kaiser(n, beta)``: ``I0(beta*sqrt(1-(2k/(n-1)-1)^2)) / I0(beta)``, k = 0..n-1."""
    if n == 1:
        return np.ones(1)
    k = np.arange(n)
    return np.i0(beta * np.sqrt(1.0 - (2.0 * k / (n - 1) - 1.0) ** 2)) / np.i0(beta)


def fspecial_gaussian(n: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', n, sigma)``: sampled Gaussian, tiny values zeroed, sum 1."""
    x = np.arange(n) - (n - 1) / 2.0
    h = np.exp(-(x[None, :] ** 2 + x[:, None] ** 2) / (2.0 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0.0
    return h / h.sum()


def fsamp2(hd: np.ndarray) -> np.ndarray:
    """MATLAB ``fsamp2(Hd)``: FIR filter whose DFT samples equal ``Hd`` (centred, rotated 180°)."""
    hd = np.rot90(np.fft.fftshift(np.rot90(hd, 2)), 2)  # inverse fftshift, as fsamp2.m does
    h = np.fft.fftshift(np.fft.ifft2(hd))
    if np.all(np.abs(h.imag).max(axis=0) < np.sqrt(np.finfo(float).eps)):
        h = h.real
    return np.rot90(h, 2)


def fwind1(hd: np.ndarray, win: np.ndarray) -> np.ndarray:
    """MATLAB ``fwind1(Hd, win)`` with one 1-D window: ``fsamp2(Hd) .* w`` where ``w`` is the
    circular window ``w(r) = interp1(t, win, r)`` for ``r <= 1`` (``t = linspace(-1, 1, n)``),
    0 outside (Huang's method)."""
    n = len(win)
    if hd.shape != (n, n):
        raise ValueError(f"Hd must be {n} x {n} to match the window, got {hd.shape}")
    t = (np.arange(n) - (n - 1) / 2.0) * (2.0 / (n - 1))
    r = np.hypot(t[None, :], t[:, None])
    outside = (r < t[0]) | (r > t[-1])
    w = np.interp(np.where(outside, 0.0, r), t, win)
    w[outside] = 0.0
    return fsamp2(hd) * w


# --------------------------------------------------------------------------- MTF kernels
@lru_cache(maxsize=256)
def _mtf_kernel_cached(gnyq: float, ratio: int, size: int, spread: int) -> np.ndarray:
    fcut = 1.0 / ratio
    alpha = math.sqrt((spread * (fcut / 2.0)) ** 2 / (-2.0 * math.log(gnyq)))
    h = fspecial_gaussian(size, alpha)
    h = fwind1(h / h.max(), kaiser_window(size))
    h = np.real(h)
    h.setflags(write=False)
    return h


def mtf_kernel(gnyq: float, ratio: int = 4, size: int = 41) -> np.ndarray:
    """The toolbox's MTF-matched filter for one band (``genMTF.m``), float64 ``(size, size)``.

    Its frequency response is ``gnyq`` at ``(size-1)/(2*ratio)`` DFT bins (≈ the MS Nyquist
    frequency ``1/(2*ratio)`` cycles per pixel) and ≈ 1 at DC (0.998 for the toolbox gains: the
    Kaiser window makes the sum not exactly 1, exactly as in MATLAB).

    Args:
        gnyq: MTF gain at Nyquist, in (0, 1).
        ratio: scale ratio (integer >= 2).
        size: odd number of taps N (toolbox: 41).
    """
    if not 0.0 < gnyq < 1.0:
        raise ValueError(f"MTF gain at Nyquist must be in (0, 1), got {gnyq}")
    _check_ratio(ratio)
    if size < 3 or size % 2 == 0:
        raise ValueError(f"kernel size must be an odd integer >= 3, got {size}")
    return _mtf_kernel_cached(float(gnyq), int(ratio), int(size), int(size) - 1)


def lp_gauss_kernel(ratio: int = 4, size: int = 41, gnyq: float = 0.3) -> np.ndarray:
    """The kernel of the toolbox's ``LPfilterGauss.m`` (gain 0.3 at Nyquist). It differs from
    :func:`mtf_kernel` only by ``alpha = sqrt((N fcut/2)^2 / (-2 ln GNyq))`` with N, not N-1
    (as the toolbox file has it)."""
    _check_ratio(ratio)
    return _mtf_kernel_cached(float(gnyq), int(ratio), int(size), int(size))


def mtf_kernels(sensor: str | Sensor, ratio: int = 4, size: int = 41,
                n_bands: int | None = None) -> np.ndarray:
    """One MTF filter per MS band of ``sensor``, float64 ``(C, size, size)`` (``genMTF.m``).

    ``n_bands`` selects the 4-band (B, G, R, NIR) subset of an 8-band sensor, or any band count
    for the generic sensor; default: the sensor's own band count.
    """
    s = get_sensor(sensor)
    gains = s.gains_for(n_bands or s.n_bands)
    return np.stack([mtf_kernel(g, ratio, size) for g in gains])


def pan_mtf_kernel(sensor: str | Sensor, ratio: int = 4, size: int = 41) -> np.ndarray:
    """The PAN MTF filter of ``sensor`` (``MTF_PAN.m``), float64 ``(1, size, size)``."""
    return mtf_kernel(get_sensor(sensor).pan_gnyq, ratio, size)[None]


def _fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes the FFT handles fastest)."""
    best = 1 << (n - 1).bit_length()
    f5 = 1
    while f5 < best:
        f3 = f5
        while f3 < best:
            m = f3
            while m < n:
                m *= 2
            best = min(best, m)
            f3 *= 3
        f5 *= 5
    return best


def _check_ratio(ratio) -> None:
    if not isinstance(ratio, (int, np.integer)) or isinstance(ratio, bool) or ratio < 2:
        raise ValueError(f"ratio must be an integer >= 2, got {ratio!r}")


def _check_pow2_ratio(ratio) -> None:
    """interp23tap and its adjoint and Gram need a power-of-2 ratio."""
    _check_ratio(ratio)
    if ratio & (ratio - 1):
        raise ValueError(f"interp23tap needs a power-of-2 ratio (2, 4, 8, ...), got {ratio}")


# --------------------------------------------------------------------------- interp23tap
def _upsample2(x: np.ndarray, first: bool) -> np.ndarray:
    """One dyadic step of ``interp23tap.m`` on a periodic 1-D signal ``x (n,)``, in polyphase
    form: the kept samples pass unchanged (the centre tap is 1, the other even taps 0) and each
    new sample between ``x[i]`` and ``x[i+1]`` is ``sum_j c[2j+1] (x[i-j] + x[i+1+j])``
    (indices modulo n). First step: ``x[i] -> 2i+1``, the new sample ``i -> 2i+2`` (wrapping
    to 0); later steps: ``x[i] -> 2i``, new ``i -> 2i+1``."""
    n = len(x)
    i = np.arange(n)
    odd_taps = _CDF23_HALF[1::2]
    mid = (x + x[(i + 1) % n]) * odd_taps[0]
    for j in range(1, len(odd_taps)):
        mid += odd_taps[j] * x[(i - j) % n]
        mid += odd_taps[j] * x[(i + 1 + j) % n]
    out = np.empty(2 * n)
    if first:
        out[1::2], out[2::2], out[0] = x, mid[:n - 1], mid[n - 1]
    else:
        out[0::2], out[1::2] = x, mid
    return out


@lru_cache(maxsize=8)
def interp23tap_response(ratio: int) -> tuple[np.ndarray, int]:
    """The ``log2(ratio)`` dyadic steps along one axis as one polyphase filter.

    The steps are circular convolutions, so on a periodic signal their composition is
    shift-invariant: input sample ``i`` adds ``x[i] * u[m]`` to output sample ``ratio*i + m``.
    Returns ``(u, reach)``: ``u`` float64 indexed by ``m`` modulo ``len(u)`` (negative offsets
    wrap to the end), nonzero only for ``|m| <= reach``.
    """
    n = 64 + 8 * ratio                      # long enough that the response does not wrap
    u = np.zeros(n)
    u[0] = 1.0
    for step in range(int(math.log2(ratio))):
        u = _upsample2(u, step == 0)
    offsets = np.flatnonzero(u)
    offsets = np.where(offsets >= len(u) // 2, offsets - len(u), offsets)
    u.setflags(write=False)
    return u, int(np.abs(offsets).max())


@lru_cache(maxsize=16)
def interp23tap_taps(ratio: int) -> tuple[np.ndarray, int]:
    """The one-axis interpolator as per-phase taps: ``(taps, halo)`` with ``taps`` float64
    ``(ratio, 2*halo + 1)``; output sample ``ratio*a + p`` is
    ``sum_j taps[p, j] * x[a - halo + j]`` (indices modulo the length)."""
    u, reach = interp23tap_response(ratio)
    halo = reach // ratio + 1
    phases = np.arange(ratio)[:, None]
    offsets = np.arange(-halo, halo + 1)[None, :]
    taps = u[(phases - ratio * offsets) % len(u)]
    taps.setflags(write=False)
    return taps, halo


@lru_cache(maxsize=8)
def interp23tap_gram_taps(ratio: int) -> tuple[np.ndarray, int]:
    """``U^T U`` along one axis (U the interpolator): a circular filter on the MS grid with
    taps ``q[d] = sum_m u[m] u[m + ratio*d]``, as ``(1, 2*D + 1)`` taps and ``D``."""
    u, reach = interp23tap_response(ratio)
    span = 2 * reach // ratio + 1
    m = np.arange(-reach, reach + 1)
    q = np.array([(u[m % len(u)] * u[(m + ratio * d) % len(u)]).sum()
                  for d in range(-span, span + 1)])[None]
    q.setflags(write=False)
    return q, span
