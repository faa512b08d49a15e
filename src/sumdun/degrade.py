"""Sensor degradation and the Wald protocol, reproducing G. Vivone's MATLAB toolbox.

Pure functions over numpy arrays or torch tensors, channel-first ``(C, H, W)`` or
``(B, C, H, W)``, on any device; the result has the input's kind (numpy in, numpy out), device
and floating dtype (integers become float64). Float64 inputs reproduce the toolbox to ~1e-12 of
the data range; float32 inputs to ~1e-6.

Toolbox functions reproduced (``Tools/`` of the public copy in ``liangjiandeng/DLPan-Toolbox``):

* ``genMTF.m`` / ``MTF_PAN.m`` -> :func:`mtf_kernel`, :func:`mtf_kernels`, :func:`pan_mtf_kernel`:
  a Gaussian "frequency response" ``fspecial('gaussian', N, alpha)`` with
  ``alpha = sqrt(((N-1)*fcut/2)^2 / (-2 ln GNyq))``, ``fcut = 1/ratio``, scaled to max 1, turned
  into an N x N FIR filter by ``fwind1(Hd, kaiser(N))`` (frequency sampling ``fsamp2`` times a
  circular window made from the 1-D Kaiser window, beta = 0.5, by Huang's method).
* ``MTF.m`` -> :func:`mtf_filter`: ``imfilter(band, h, 'replicate')`` per band.
* ``interp23tap.m`` -> :func:`interp23tap`: zero insertion and the 23-tap symmetric polynomial
  filter, circular borders, in ``log2(ratio)`` dyadic steps. Phase: MS pixel ``i`` lands on
  upsampled pixel ``ratio*i + ratio/2`` (0-based) for ratio 4 (``i*2 + 1`` for ratio 2).
* MATLAB ``imresize`` -> :func:`imresize`: ``'bicubic'`` (Keys, a = -0.5) with antialiasing
  when shrinking, and ``'nearest'`` (no antialiasing), symmetric borders.
* ``resize_images.m`` -> :func:`wald`: MTF filter + ``imresize(.., 1/ratio, 'nearest')`` for MS
  (keeps 0-based pixels ``floor(ratio/2) + ratio*k``), bicubic ``imresize(PAN, 1/ratio)`` for PAN;
  ``pan_reduction='mtf'`` uses ``MTF_PAN.m`` + the same decimation instead.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch

from ._tensor import Array, as_batch
from .kernels import (CDF23, _check_pow2_ratio, _check_ratio, _fft_size, fsamp2,
                      fspecial_gaussian, fwind1, interp23tap_gram_taps, interp23tap_taps,
                      kaiser_window, lp_gauss_kernel, mtf_kernel, mtf_kernels, pan_mtf_kernel)
from .sensors import Sensor

__all__ = [
    "kaiser_window", "fspecial_gaussian", "fsamp2", "fwind1", "mtf_kernel", "mtf_kernels",
    "pan_mtf_kernel", "lp_gauss_kernel", "mtf_filter", "interp23tap", "interp23tap_adjoint",
    "interp23tap_gram", "imresize", "decimate", "wald",
    "CDF23",
]

def _kernel_spectrum(k: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``rfft2(k, s=shape)`` of small kernels ``(C, n, n)`` as two DFT-matrix products, a few
    milliseconds instead of one full-size FFT per call."""
    n = k.shape[-1]
    ctype = torch.complex128 if k.dtype == torch.float64 else torch.complex64
    t = torch.arange(n, dtype=torch.float64, device=k.device)

    def dft(size: int, count: int) -> torch.Tensor:   # (count, n): exp(-2 pi i f t / size)
        f = torch.arange(count, dtype=torch.float64, device=k.device)
        angle = -2 * math.pi * (torch.outer(f, t) % size) / size
        return torch.polar(torch.ones_like(angle), angle).to(ctype)

    return dft(shape[0], shape[0]) @ k.to(ctype) @ dft(shape[1], shape[1] // 2 + 1).T


def mtf_filter(img: Array, kernels: Array) -> Array:
    """Filter each band with its kernel, replicate borders (``imfilter(.., 'replicate')``).

    Correlation as in MATLAB (identical to convolution for the symmetric MTF kernels), computed
    with FFTs on the replicate-padded image, so a 41 x 41 kernel costs the same as a 3 x 3 one.

    Args:
        img: ``(C, H, W)`` or ``(B, C, H, W)``.
        kernels: ``(C, N, N)`` one per band, or ``(N, N)`` / ``(1, N, N)`` for all bands; N odd.

    Returns:
        The filtered image, same shape and kind as ``img``.
    """
    x, restore = as_batch(img, "img")
    k = kernels if isinstance(kernels, torch.Tensor) else torch.from_numpy(np.array(kernels))
    k = k.to(device=x.device, dtype=x.dtype)
    if k.ndim == 2:
        k = k[None]
    if k.ndim != 3 or k.shape[-1] != k.shape[-2] or k.shape[-1] % 2 == 0:
        raise ValueError(f"kernels must be (C, N, N) or (N, N) with N odd, got {tuple(k.shape)}")
    c = x.shape[1]
    if k.shape[0] == 1:
        k = k.expand(c, -1, -1)
    elif k.shape[0] != c:
        raise ValueError(f"{k.shape[0]} kernels for an image with {c} bands")
    n = k.shape[-1]
    p = n // 2
    b, _, h, w = x.shape
    out = torch.empty_like(x)
    shape = (_fft_size(h + 2 * p), _fft_size(w + 2 * p))  # no wrap-around: size >= padded
    if torch.equal(k, k.flip(-1)) and torch.equal(k, k.flip(-2)):
        kspec, start = _symmetric_kernel_spectrum(k, shape), p   # real, zero phase
    else:
        kspec, start = _kernel_spectrum(torch.flip(k, dims=(-2, -1)), shape), n - 1
    # Band by band through one zero-filled buffer: the replicate-padded band in its corner
    # (a fresh one per band when autograd records the in-place writes).
    fresh = x.requires_grad and torch.is_grad_enabled()
    buf = x.new_zeros(b, *shape)
    for ci in range(c):
        if fresh and ci:
            buf = x.new_zeros(b, *shape)
        _replicate_pad_into(x[:, ci], p, buf)
        spec = torch.fft.rfft2(buf).mul_(kspec[ci])
        out[:, ci] = _irfft2(spec, shape)[:, start:start + h, start:start + w]
    return restore(out)


def _replicate_pad_into(x: torch.Tensor, p: int, buf: torch.Tensor) -> None:
    """``buf[:, :h + 2p, :w + 2p] = F.pad(x, (p, p, p, p), mode="replicate")`` for ``x (B, h, w)``
    without a temporary."""
    h, w = x.shape[-2:]
    buf[:, p:p + h, p:p + w] = x
    buf[:, :p, p:p + w] = x[:, :1]
    buf[:, p + h:h + 2 * p, p:p + w] = x[:, -1:]
    rows = buf[:, :h + 2 * p]
    rows[..., :p] = rows[..., p:p + 1]
    rows[..., p + w:w + 2 * p] = rows[..., p + w - 1:p + w]


def _symmetric_kernel_spectrum(k: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The zero-phase spectrum of kernels ``(C, n, n)`` symmetric along both axes, centred on
    the origin: real, ``C1 k C2^T`` with cosine matrices (``C[f, d] = cos(2 pi f d / size)``,
    ``d = -n//2 .. n//2``); filtering with it leaves the output unshifted."""
    n = k.shape[-1]
    d = torch.arange(n, dtype=torch.float64, device=k.device) - n // 2

    def cos(size: int, count: int) -> torch.Tensor:
        f = torch.arange(count, dtype=torch.float64, device=k.device)
        return torch.cos(2 * math.pi * (torch.outer(f, d) % size) / size).to(k.dtype)

    return cos(shape[0], shape[0]) @ k @ cos(shape[1], shape[1] // 2 + 1).T


def _irfft2(spec: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``torch.fft.irfft2``; on the CPU through scipy's multithreaded pocketfft, which is
    about twice as fast as torch's for this inverse (the forward one is not), unless autograd
    has to follow it."""
    if spec.device.type != "cpu" or (spec.requires_grad and torch.is_grad_enabled()):
        return torch.fft.irfft2(spec, s=shape)
    return torch.from_numpy(scipy.fft.irfft2(spec.numpy(), s=shape, overwrite_x=True,
                                             workers=torch.get_num_threads()))


# --------------------------------------------------------------------------- interpolation
def _interp23tap_taps(ratio: int) -> tuple[torch.Tensor, int]:
    """:func:`sumdun.kernels.interp23tap_taps` as a float64 tensor."""
    taps, halo = interp23tap_taps(ratio)
    return torch.from_numpy(taps.copy()), halo


def _circular_pieces(x: torch.Tensor, halo: int) -> list[tuple[int, int, torch.Tensor]]:
    """Rows of ``x (n, L)`` padded circularly by ``halo``, in pieces ``(a0, a1, src)``: for
    ``a`` in ``[a0, a1)`` the padded rows ``a - halo .. a + halo`` are
    ``src[a - a0 : a - a0 + 2*halo + 1]``. The interior is ``x`` itself (no copy), the two
    ends small copies."""
    n = x.shape[0]

    def padded(a0: int, a1: int) -> torch.Tensor:
        return x.index_select(0, torch.arange(a0 - halo, a1 + halo, device=x.device) % n)

    if n <= 4 * halo:
        return [(0, n, padded(0, n))]
    return [(0, halo, padded(0, halo)), (halo, n - halo, x), (n - halo, n, padded(n - halo, n))]


def _strided(src: torch.Tensor, size: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """``src.as_strided`` from ``src``'s own first element."""
    return src.as_strided(size, stride, src.storage_offset())


def _banded_rows(x: torch.Tensor, taps: torch.Tensor, halo: int, out: torch.Tensor) -> None:
    """``out (ratio*n, M) = B x`` for ``x (n, M)``, B the circular shift-invariant operator
    mapping input rows ``[a - halo, a + halo]`` to output rows ``[ratio*a, ratio*(a + 1))``
    with ``taps (ratio, 2*halo + 1)``.

    Batched matrix products over strided views (input row ``a`` sees the ``2*halo + 1`` rows
    around it, nothing copied but the ends), so every output row is written once.
    """
    x = x.contiguous()
    n, m = x.shape
    ratio = taps.shape[0]
    taps = taps.to(device=x.device, dtype=x.dtype)
    out_rows = out.view(n, ratio, m)
    for a0, a1, src in _circular_pieces(x, halo):
        windows = _strided(src, (a1 - a0, 2 * halo + 1, m), (m, m, 1))
        torch.matmul(taps, windows, out=out_rows[a0:a1])


def _column_bank(taps: torch.Tensor, like: torch.Tensor, block: int = 32) -> torch.Tensor:
    """The banded block matrix of ``taps (ratio, width)`` for :func:`_banded_cols`:
    ``(block + width - 1, ratio*block)`` (inputs with halo, outputs), in ``like``'s dtype."""
    ratio, width = taps.shape
    bank = like.new_zeros(block + width - 1, ratio * block)
    for i in range(block):
        bank[i:i + width, ratio * i:ratio * (i + 1)] = taps.t()
    return bank


def _banded_cols(x: torch.Tensor, bank: torch.Tensor, halo: int, out: torch.Tensor) -> None:
    """``out (M, ratio*n)``: :func:`_banded_rows` along the last axis of ``x (M, n)``, as dense
    products of blocks of input columns (plus halo) with ``bank`` (:func:`_column_bank`)."""
    n = x.shape[1]
    block = bank.shape[0] - 2 * halo
    ratio = bank.shape[1] // block
    xp = x.index_select(1, torch.arange(-halo, n + halo, device=x.device) % n)
    for a in range(0, n, block):
        e = min(a + block, n)
        torch.matmul(xp[:, a:e + 2 * halo], bank[:e - a + 2 * halo, :ratio * (e - a)],
                     out=out[:, ratio * a:ratio * e])


def _banded_separable(x: torch.Tensor, taps: torch.Tensor, halo: int, out: torch.Tensor,
                      bank: torch.Tensor) -> None:
    """The banded operator along both axes of ``x (h, w)`` into ``out (ratio*h, ratio*w)``:
    the small column pass first (``bank`` = :func:`_column_bank` of ``taps``), then the big row
    pass writes ``out`` once."""
    h, w = x.shape
    wide = x.new_empty(h, taps.shape[0] * w)
    _banded_cols(x, bank, halo, wide)
    _banded_rows(wide, taps, halo, out)


def _interp23tap_gram_taps(ratio: int) -> tuple[torch.Tensor, int]:
    """:func:`sumdun.kernels.interp23tap_gram_taps` as a float64 tensor."""
    q, span = interp23tap_gram_taps(ratio)
    return torch.from_numpy(q.copy()), span


def _adjoint_rows(y: torch.Tensor, taps: torch.Tensor, halo: int) -> torch.Tensor:
    """The transpose of :func:`_banded_rows`: ``(ratio*n, M) -> (n, M)``.

    Output row ``i`` gathers input rows ``ratio*a + p`` for ``a`` in ``[i - halo, i + halo]``:
    a contiguous window of ``(2*halo + 1) * ratio`` rows of the input padded by ``halo`` row
    blocks, so again batched matrix products over strided views.
    """
    ratio = taps.shape[0]
    y = y.contiguous()
    n, m = y.shape[0] // ratio, y.shape[1]
    weights = taps.flip(1).t().reshape(1, -1).to(device=y.device, dtype=y.dtype)
    out = y.new_empty(n, 1, m)
    for a0, a1, src in _circular_pieces(y.view(n, ratio * m), halo):
        windows = _strided(src, (a1 - a0, (2 * halo + 1) * ratio, m), (ratio * m, m, 1))
        torch.matmul(weights, windows, out=out[a0:a1])
    return out[:, 0]


def interp23tap(ms: Array, ratio: int = 4) -> Array:
    """Upsample by ``ratio`` (a power of 2) with the toolbox's 23-tap polynomial interpolator.

    Exactly ``interp23tap.m`` (to ~1e-15 relative): per dyadic step, zero insertion (first step
    at odd 0-based positions, later steps at even ones), then the 23-tap filter along columns
    and rows with circular borders. Original samples are kept:
    ``out[..., r*i + r//2, r*j + r//2] == ms[..., i, j]`` for ratio r = 4 (``2i+1`` for r = 2).

    The dyadic steps are composed into one polyphase filter per axis (``ratio`` phases of
    ``2*halo + 1`` taps), applied band by band: columns as dense products with a banded block
    matrix, then rows as one batched matrix product over a strided view that writes each output
    row once. Float32 input gives float32 output within ~1e-6 of the range.

    Args:
        ms: ``(C, h, w)`` or ``(B, C, h, w)``.

    Returns:
        ``(C, ratio*h, ratio*w)`` or ``(B, C, ratio*h, ratio*w)``.
    """
    _check_pow2_ratio(ratio)
    x, restore = as_batch(ms, "ms")
    if x.requires_grad and torch.is_grad_enabled():
        return restore(_Interp23tap.apply(x, int(ratio)))
    return restore(_interp23tap(x, int(ratio)))


def _interp23tap(x: torch.Tensor, ratio: int) -> torch.Tensor:
    b, c, h, w = x.shape
    out = x.new_empty(b, c, ratio * h, ratio * w)
    taps, halo = _interp23tap_taps(ratio)
    bank = _column_bank(taps, x)
    for bi in range(b):
        for ci in range(c):                  # band by band: cache-sized work
            _banded_separable(x[bi, ci], taps, halo, out[bi, ci], bank)
    return out


class _Interp23tap(torch.autograd.Function):
    """interp23tap with gradients: its backward is the exact transpose
    (:func:`interp23tap_adjoint`), since the operator is linear."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, ratio: int) -> torch.Tensor:
        ctx.ratio = ratio
        return _interp23tap(x.detach(), ratio)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return interp23tap_adjoint(grad.contiguous(), ctx.ratio), None


def interp23tap_adjoint(img: Array, ratio: int = 4) -> Array:
    """The transpose of :func:`interp23tap`: ``<interp23tap(x), img> == <x, adjoint(img)>``.

    Args:
        img: ``(C, ratio*h, ratio*w)`` or ``(B, C, ratio*h, ratio*w)``.

    Returns:
        ``(C, h, w)`` or ``(B, C, h, w)``, same dtype.
    """
    _check_pow2_ratio(ratio)
    y, restore = as_batch(img, "img")
    b, c, hh, ww = y.shape
    _check_divisible((hh, ww), ratio, "img")
    out = y.new_empty(b, c, hh // ratio, ww // ratio)
    taps, halo = _interp23tap_taps(int(ratio))
    for bi in range(b):
        for ci in range(c):
            rows = _adjoint_rows(y[bi, ci], taps, halo)                  # (h, ratio*w)
            out[bi, ci] = _adjoint_rows(rows.t().contiguous(), taps, halo).t()
    return restore(out)


def interp23tap_gram(ms: Array, ratio: int = 4) -> torch.Tensor:
    """``G[b, k, l] = sum over pixels of interp23tap(ms)[b, k] * interp23tap(ms)[b, l]``,
    computed at MS resolution as ``<x_k, U^T U x_l>`` (``U^T U`` is a small circular filter on
    the MS grid, applied in the input's dtype; the products are summed in float64), without
    forming the upsampled image.

    Args:
        ms: ``(C, h, w)`` or ``(B, C, h, w)``.

    Returns:
        ``(B, C, C)`` float64 tensor (B = 1 for a single image).
    """
    _check_pow2_ratio(ratio)
    x, _ = as_batch(ms, "ms")
    taps, span = _interp23tap_gram_taps(int(ratio))
    b, c = x.shape[:2]
    filtered = torch.empty_like(x)                        # U^T U x, band by band
    bank = _column_bank(taps, x)
    for bi in range(b):
        for ci in range(c):
            _banded_separable(x[bi, ci], taps, span, filtered[bi, ci], bank)
    return inner_products64(x, filtered)


def inner_products64(a: torch.Tensor, b: torch.Tensor, rows: int = 32) -> torch.Tensor:
    """``G[n, k, l] = sum over pixels of a[n, k] * b[n, l]`` in float64, for ``a (B, C, H, W)``
    and ``b (B, K, H, W)`` of any float dtype: ``(B, C, K)``, converted strip by strip
    (``rows`` rows) so no float64 copy of the images is made."""
    g = torch.zeros(a.shape[0], a.shape[1], b.shape[1], dtype=torch.float64, device=a.device)
    for r in range(0, a.shape[-2], rows):
        sa = _strip64(a, r, rows)
        sb = sa if b is a else _strip64(b, r, rows)          # a Gram matrix: convert once
        g += torch.matmul(sa, sb.transpose(-1, -2))
    return g


def sums64(a: torch.Tensor, rows: int = 32) -> torch.Tensor:
    """Per-band sums of ``a (B, C, H, W)`` in float64, ``(B, C)``, strip by strip."""
    return sum(_strip64(a, r, rows).sum(-1) for r in range(0, a.shape[-2], rows))


def _strip64(a: torch.Tensor, r: int, rows: int) -> torch.Tensor:
    return a[..., r:r + rows, :].to(torch.float64).flatten(-2)


def _cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    a2, a3 = a * a, a * a * a
    return ((1.5 * a3 - 2.5 * a2 + 1) * (a <= 1)
            + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2)))


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(float)


def _contributions(in_len: int, out_len: int, scale: float, method: str, antialias: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB imresize's ``contributions``: 0-based source indices and weights ``(out, P)``."""
    kernel, width = (_cubic, 4.0) if method == "bicubic" else (_box, 1.0)
    if scale < 1 and antialias:
        def h(x):
            return scale * kernel(scale * x)
        width = width / scale
    else:
        h = kernel
    x = np.arange(1, out_len + 1, dtype=float)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    ind = left + np.arange(taps)[None, :]
    weights = h(u - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_len + 1), np.arange(in_len, 0, -1)])
    ind = aux[np.mod(ind.astype(np.int64) - 1, len(aux))]
    keep = np.any(weights != 0, axis=0)
    return ind[:, keep] - 1, weights[:, keep]


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, scale: float, method: str,
                antialias: bool) -> torch.Tensor:
    ind, wts = _contributions(x.shape[dim], out_len, scale, method, antialias)
    ind_t = torch.as_tensor(ind, device=x.device)
    w_t = torch.as_tensor(wts, dtype=x.dtype, device=x.device)
    shape = [1] * x.ndim
    shape[dim] = out_len
    out = None
    for p in range(ind.shape[1]):  # a handful of taps, each a gather over the whole image
        term = x.index_select(dim, ind_t[:, p]) * w_t[:, p].view(shape)
        out = term if out is None else out + term
    return out


def imresize(img: Array, scale: float, method: str = "bicubic", antialias: bool | None = None
             ) -> Array:
    """MATLAB ``imresize(img, scale, method)`` for ``'bicubic'`` and ``'nearest'``.

    Output size ``ceil(scale * size)``; rows are resized first, then columns (MATLAB's order for
    equal scales); borders are symmetric; antialiasing defaults to MATLAB's (on for bicubic
    when shrinking, off for nearest). For ``scale = 1/r`` with nearest, the kept 0-based pixels
    are ``floor(r/2) + r*k``.
    """
    if method not in ("bicubic", "nearest"):
        raise ValueError(f"method must be 'bicubic' or 'nearest', got {method!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if antialias is None:
        antialias = method != "nearest"
    x, restore = as_batch(img, "img")
    h, w = x.shape[-2:]
    oh, ow = int(math.ceil(scale * h)), int(math.ceil(scale * w))
    x = _resize_dim(x, -2, oh, scale, method, antialias)
    x = _resize_dim(x, -1, ow, scale, method, antialias)
    return restore(x)


def decimate(img: Array, ratio: int = 4) -> Array:
    """Keep every ``ratio``-th pixel with the toolbox's phase (``imresize(.., 1/ratio, 'nearest')``),
    i.e. 0-based rows/columns ``floor(ratio/2) + ratio*k``. Size must be a multiple of ``ratio``."""
    _check_ratio(ratio)
    x, restore = as_batch(img, "img")
    _check_divisible(x.shape[-2:], ratio, "image")
    o = ratio // 2
    return restore(x[..., o::ratio, o::ratio].contiguous())


# --------------------------------------------------------------------------- Wald protocol
def wald(gt: Array, pan: Array, sensor: str | Sensor, ratio: int = 4,
         pan_reduction: str = "imresize", size: int = 41) -> tuple[Array, Array]:
    """Reduced-resolution pair by Wald's protocol, as the toolbox's ``resize_images.m``.

    ``ms_lr = decimate(mtf_filter(gt, mtf_kernels(sensor)), ratio)``;
    ``pan_lr = imresize(pan, 1/ratio)`` (bicubic with antialiasing, ``pan_reduction='imresize'``,
    the toolbox default) or ``decimate(mtf_filter(pan, pan_mtf_kernel(sensor)), ratio)``
    (``pan_reduction='mtf'``, ``MTF_PAN.m``).

    Args:
        gt: the MS image to degrade, ``(C, h, w)`` or ``(B, C, h, w)``: at full resolution
            this is the original MS (``h``, ``w`` multiples of ``ratio``), which then serves as
            the reference (ground truth) of the reduced-resolution pair.
        pan: ``(1, ratio*h, ratio*w)`` or ``(B, 1, ratio*h, ratio*w)``.
        sensor: sensor name (its MS gains must fit the band count; 4-band subsets of 8-band
            sensors are accepted).

    Returns:
        ``(ms_lr, pan_lr)``: ``(.., C, h/ratio, w/ratio)`` and ``(.., 1, h, w)``, same kind as
        the inputs; ``pan_lr`` lies on the grid of ``gt``.
    """
    if pan_reduction not in ("imresize", "mtf"):
        raise ValueError(f"pan_reduction must be 'imresize' or 'mtf', got {pan_reduction!r}")
    _check_ratio(ratio)
    g, _ = as_batch(gt, "gt")
    p, _ = as_batch(pan, "pan")
    if p.shape[1] != 1:
        raise ValueError(f"pan must have one band, got {p.shape[1]}")
    h, w = g.shape[-2:]
    if g.shape[0] != p.shape[0] or tuple(p.shape[-2:]) != (ratio * h, ratio * w):
        raise ValueError(f"pan {tuple(p.shape)} must be {ratio}x the size of gt "
                         f"{tuple(g.shape)} (same batch size)")
    _check_divisible(g.shape[-2:], ratio, "gt")
    kernels = mtf_kernels(sensor, ratio, size, n_bands=g.shape[1])
    ms_lr = decimate(mtf_filter(gt, kernels), ratio)
    if pan_reduction == "imresize":
        pan_lr = imresize(pan, 1.0 / ratio, "bicubic")
    else:
        pan_lr = decimate(mtf_filter(pan, pan_mtf_kernel(sensor, ratio, size)), ratio)
    return ms_lr, pan_lr


def _check_divisible(hw, ratio: int, name: str) -> None:
    if hw[0] % ratio or hw[1] % ratio:
        raise ValueError(f"{name} size {tuple(hw)} is not a multiple of the ratio {ratio}; "
                         f"crop it to {(hw[0] // ratio * ratio, hw[1] // ratio * ratio)}")
