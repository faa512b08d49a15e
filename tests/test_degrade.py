"""The degradation functions against the toolbox's published definitions, hand-computed cases
and independent implementations (scipy), never against their own output."""
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate, correlate1d
from scipy.signal.windows import kaiser

from sumdun import degrade as d

import toolbox_reference as R
from synthetic import scene


# ------------------------------------------------------------------ MATLAB building blocks
def test_kaiser_matches_scipy_and_closed_form():
    w = d.kaiser_window(41, 0.5)
    np.testing.assert_allclose(w, kaiser(41, 0.5), rtol=0, atol=1e-14)
    assert w[20] == pytest.approx(1.0)
    # ends: I0(0) / I0(0.5) = 1 / 1.0634833707413236
    assert w[0] == pytest.approx(1 / 1.0634833707413236, abs=1e-12)


def test_fspecial_gaussian():
    h = d.fspecial_gaussian(5, 1.3)
    assert h.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(h, h.T)
    np.testing.assert_allclose(h, h[::-1, ::-1])
    assert h[2, 2] / h[2, 3] == pytest.approx(math.exp(1 / (2 * 1.3**2)))
    assert h[2, 2] / h[3, 3] == pytest.approx(math.exp(2 / (2 * 1.3**2)))


def test_fsamp2_flat_response_is_a_delta():
    h = d.fsamp2(np.ones((7, 7)))
    expected = np.zeros((7, 7))
    expected[3, 3] = 1
    np.testing.assert_allclose(h, expected, atol=1e-15)


@pytest.mark.parametrize("gnyq", [0.34, 0.22, 0.11, 0.3, 0.15])
@pytest.mark.parametrize("ratio,n", [(4, 41), (2, 41), (4, 21)])
def test_mtf_kernel_matches_independent_transcription(gnyq, ratio, n):
    np.testing.assert_allclose(d.mtf_kernel(gnyq, ratio, n), R.gauss_fir(gnyq, ratio, n),
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("gnyq", [0.34, 0.3, 0.22, 0.15, 0.11])
def test_mtf_kernel_frequency_response(gnyq):
    """Response ≈ GNyq at the design frequency (N-1)/(2 ratio) DFT bins and ≈ 1 at DC."""
    n, ratio = 41, 4
    h = d.mtf_kernel(gnyq, ratio, n)
    assert np.allclose(h, h.T) and np.allclose(h, h[::-1, ::-1])
    assert h[20, 20] == h.max()
    f = (n - 1) / (2 * ratio) / n  # cycles per pixel
    taps = np.arange(n) - 20
    response = (h * np.cos(2 * np.pi * f * taps)[None, :]).sum()
    assert response == pytest.approx(gnyq, abs=1e-3)
    assert 0.997 < h.sum() < 0.9995  # the Kaiser window costs ~0.1% of DC gain, as in MATLAB


def test_mtf_kernels_per_sensor():
    k = d.mtf_kernels("wv3")
    assert k.shape == (8, 41, 41)
    for i, g in enumerate((0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315)):
        np.testing.assert_array_equal(k[i], d.mtf_kernel(g))
    k4 = d.mtf_kernels("wv3", n_bands=4)
    np.testing.assert_array_equal(k4[2], d.mtf_kernel(0.365))  # red of the B,G,R,NIR subset
    np.testing.assert_array_equal(d.pan_mtf_kernel("wv2")[0], d.mtf_kernel(0.11))
    with pytest.raises(ValueError, match="odd"):
        d.mtf_kernel(0.3, 4, 40)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        d.mtf_kernel(1.2)


# ------------------------------------------------------------------ MTF filtering
def test_mtf_filter_equals_imfilter_replicate():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 2047, (4, 37, 50))
    k = d.mtf_kernels("qb")
    y = d.mtf_filter(x, k)
    ref = np.stack([correlate(x[i], k[i], mode="nearest") for i in range(4)])
    assert isinstance(y, np.ndarray) and y.shape == x.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 2047)


@pytest.mark.parametrize("symmetry", ["none", "rows only", "both"])
def test_mtf_filter_any_kernel_equals_imfilter(symmetry):
    # symmetric kernels take the zero-phase real spectrum, the others the full complex one
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 2047, (2, 23, 31))
    k = rng.uniform(-1, 1, (2, 9, 9))
    if symmetry != "none":
        k = k + k[:, ::-1]
    if symmetry == "both":
        k = k + k[:, :, ::-1]
    y = d.mtf_filter(x, k)
    ref = np.stack([correlate(x[i], k[i], mode="nearest") for i in range(2)])
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 2047)


def test_inner_products64_and_sums64_are_float64_exact():
    rng = np.random.default_rng(8)
    a = torch.from_numpy(rng.uniform(0, 2047, (2, 3, 37, 29))).float()   # 37: strips uneven
    b = torch.from_numpy(rng.uniform(0, 2047, (2, 2, 37, 29))).float()
    a64, b64 = a.double().flatten(-2), b.double().flatten(-2)
    g = d.inner_products64(a, b, rows=8)
    assert g.dtype == torch.float64 and g.shape == (2, 3, 2)
    torch.testing.assert_close(g, a64 @ b64.transpose(-1, -2), rtol=1e-14, atol=0)
    torch.testing.assert_close(d.sums64(a, rows=8), a64.sum(-1), rtol=1e-14, atol=0)


def test_mtf_filter_is_correlation_not_convolution():
    x = np.zeros((1, 9, 9))
    x[0, 4, 4] = 1
    k = np.zeros((3, 3))
    k[0, 1] = 1  # picks the pixel above
    y = d.mtf_filter(x, k)
    assert y[0, 5, 4] == pytest.approx(1) and abs(y[0, 3, 4]) < 1e-12


def test_mtf_filter_torch_batch_float32():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 2047, (2, 8, 40, 40))
    k = d.mtf_kernels("wv2")
    y64 = d.mtf_filter(torch.from_numpy(x), k)
    y32 = d.mtf_filter(torch.from_numpy(x).float(), k)
    assert isinstance(y64, torch.Tensor) and y32.dtype == torch.float32
    assert (y32.double() - y64).abs().max() / 2047 < 1e-6
    np.testing.assert_allclose(d.mtf_filter(x[1], k), y64[1].numpy(), atol=1e-9)
    # constant image -> constant times the DC gain (replicate borders add nothing)
    c = d.mtf_filter(np.full((8, 30, 30), 1000.0), k)
    np.testing.assert_allclose(c, np.broadcast_to(1000.0 * k.sum(axis=(1, 2))[:, None, None], c.shape), rtol=1e-10)


def test_mtf_filter_bad_kernels():
    with pytest.raises(ValueError, match="3 kernels for an image with 4 bands"):
        d.mtf_filter(np.zeros((4, 8, 8)), np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="channel-first"):
        d.mtf_filter(np.zeros((8, 8)), np.zeros((5, 5)))


# ------------------------------------------------------------------ interp23tap
def _interp23tap_reference(x, ratio):
    """interp23tap.m literally: zero insertion then 23-tap correlation, circular, via scipy."""
    for z in range(int(math.log2(ratio))):
        c, h, w = x.shape
        u = np.zeros((c, 2 * h, 2 * w))
        if z == 0:
            u[:, 1::2, 1::2] = x
        else:
            u[:, 0::2, 0::2] = x
        u = correlate1d(u, d.CDF23, axis=1, mode="wrap")
        x = correlate1d(u, d.CDF23, axis=2, mode="wrap")
    return x


@pytest.mark.parametrize("shape", [(3, 16, 16), (2, 5, 7), (1, 3, 2)])
@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_interp23tap_matches_literal_toolbox_algorithm(shape, ratio):
    x = np.random.default_rng(2).uniform(0, 2047, shape)
    np.testing.assert_allclose(d.interp23tap(x, ratio), _interp23tap_reference(x, ratio),
                               rtol=0, atol=1e-9)


def test_interp23tap_phase_and_taps():
    assert d.CDF23.shape == (23,) and d.CDF23[11] == 1.0 and d.CDF23.sum() == pytest.approx(2.0)
    x = np.random.default_rng(3).uniform(0, 1, (2, 12, 12))
    u4 = d.interp23tap(x, 4)
    np.testing.assert_allclose(u4[:, 2::4, 2::4], x, atol=1e-12)  # samples kept at 4i + 2
    u2 = d.interp23tap(x, 2)
    np.testing.assert_allclose(u2[:, 1::2, 1::2], x, atol=1e-12)  # and at 2i + 1
    # a delta at (5, 5) with ratio 2: the separable impulse response c[k] c[l] around (11, 11)
    delta = np.zeros((1, 12, 12))
    delta[0, 5, 5] = 1
    r = d.interp23tap(delta, 2)[0]
    np.testing.assert_allclose(r[11, 0:23], d.CDF23[0:23], atol=1e-15)
    np.testing.assert_allclose(r[0:23, 11 + 3], d.CDF23 * d.CDF23[11 + 3], atol=1e-15)
    # constant in, constant out
    np.testing.assert_allclose(d.interp23tap(np.full((1, 6, 6), 7.0)), 7.0, atol=1e-9)


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 16, 16), (3, 37, 71)])
@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_interp23tap_adjoint_and_gram(shape, ratio):
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.uniform(0, 2047, (2,) + shape))
    p = torch.from_numpy(rng.uniform(0, 1, (2, shape[0], ratio * shape[1], ratio * shape[2])))
    up = d.interp23tap(x, ratio)
    # <U x, p> == <x, U^T p> (the adjoint), per image and band
    lhs = (up * p).sum((-2, -1))
    rhs = (x * d.interp23tap_adjoint(p, ratio)).sum((-2, -1))
    torch.testing.assert_close(lhs, rhs, rtol=1e-13, atol=0)
    # Gram of the upsampled bands, computed at MS size, equals the direct sums of products
    direct = torch.einsum("bkhw,blhw->bkl", up, up)
    torch.testing.assert_close(d.interp23tap_gram(x, ratio), direct, rtol=1e-13, atol=0)
    # float32: same operators within float32 rounding
    up32 = d.interp23tap(x.float(), ratio)
    assert up32.dtype == torch.float32
    assert (up32.double() - up).abs().max() < 2e-6 * 2047
    with pytest.raises(ValueError, match="not a multiple of the ratio"):
        d.interp23tap_adjoint(p[..., :-1], ratio)
    with pytest.raises(ValueError, match="power-of-2 ratio"):
        d.interp23tap_gram(x, 3)


def test_mtf_filter_is_differentiable():
    # the fast CPU inverse FFT must not cut autograd: gradients equal finite differences
    x = torch.rand(1, 2, 9, 11, dtype=torch.float64, requires_grad=True)
    k = torch.from_numpy(np.stack([d.mtf_kernel(0.3, 4, 7), d.mtf_kernel(0.2, 4, 7)]))
    assert torch.autograd.gradcheck(lambda t: d.mtf_filter(t, k), (x,))


def test_interp23tap_torch_and_errors():
    t = torch.rand(2, 4, 8, 8, dtype=torch.float64)
    out = d.interp23tap(t)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4, 32, 32)
    np.testing.assert_allclose(out[1].numpy(), d.interp23tap(t[1].numpy()), atol=1e-12)
    with pytest.raises(ValueError, match="power-of-2"):
        d.interp23tap(t, 3)
    with pytest.raises(ValueError, match="integer >= 2"):
        d.interp23tap(t, 1)


# ------------------------------------------------------------------ MATLAB imresize
# Bicubic (a = -0.5) with antialiasing at scale 1/2: kernel 0.5*cubic(0.5 x) at distances
# +-0.5, +-1.5, +-2.5, +-3.5, hand-computed: cubic(0.25) = 0.8671875, cubic(0.75) = 0.2265625,
# cubic(1.25) = -0.0703125, cubic(1.75) = -0.0234375; halved (they sum to 2).
HALF_WEIGHTS = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375,
                         0.43359375, 0.11328125, -0.03515625, -0.01171875])


def test_imresize_half_bicubic_hand_weights():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 100, (1, 16, 16))
    y = d.imresize(x, 0.5)
    assert y.shape == (1, 8, 8)
    # interior output (k, l) sees input 2k-3 .. 2k+4 (0-based) with HALF_WEIGHTS
    for k in range(2, 6):
        for l in range(2, 6):
            block = x[0, 2 * k - 3:2 * k + 5, 2 * l - 3:2 * l + 5]
            assert y[0, k, l] == pytest.approx(HALF_WEIGHTS @ block @ HALF_WEIGHTS, abs=1e-10)


def test_imresize_symmetric_border_hand_value():
    # first output of a ramp 0..15 at scale 1/2: indices -3..4 reflect to 2,1,0,0,1,2,3,4
    x = np.tile(np.arange(16.0), (16, 1))[None]
    y = d.imresize(x, 0.5)
    assert y[0, 5, 0] == pytest.approx(0.44921875, abs=1e-12)


def test_imresize_quarter_reproduces_ramps_with_toolbox_phase():
    x = np.tile(np.arange(64.0), (64, 1))[None]  # value = column index
    y = d.imresize(x, 0.25)
    assert y.shape == (1, 16, 16)
    # output column k is centred on input 4k + 1.5 (0-based) away from the borders
    np.testing.assert_allclose(y[0, 8, 3:13], 4 * np.arange(3, 13) + 1.5, atol=1e-10)
    np.testing.assert_allclose(d.imresize(np.full((2, 40, 40), 5.0), 0.25), 5.0, atol=1e-12)


@pytest.mark.parametrize("ratio,offset", [(4, 2), (2, 1), (3, 1)])
def test_imresize_nearest_phase(ratio, offset):
    n = 12 * ratio
    idx = np.tile(np.arange(float(n)), (n, 1))[None]
    y = d.imresize(idx, 1 / ratio, "nearest")
    np.testing.assert_array_equal(y[0, 0], offset + ratio * np.arange(n // ratio))
    np.testing.assert_array_equal(d.decimate(idx, ratio)[0, 0], y[0, 0])


def test_decimate_requires_multiple():
    with pytest.raises(ValueError, match="not a multiple of the ratio 4"):
        d.decimate(np.zeros((1, 10, 12)), 4)


# ------------------------------------------------------------------ Wald protocol
def test_wald_shapes_types_and_composition():
    gt, ms, pan = scene(seed=5, bands=4, h=16, w=16)  # gt 64 x 64 plays the original MS
    ms_lr, pan_lr = d.wald(gt, _up(pan, gt), "qb")
    assert ms_lr.shape == (4, 16, 16) and pan_lr.shape == (1, 64, 64)
    # MS: MTF filter (imfilter replicate, independent scipy) then keep pixels 2 + 4k
    k = d.mtf_kernels("qb")
    filt = np.stack([correlate(gt[i], k[i], mode="nearest") for i in range(4)])
    np.testing.assert_allclose(ms_lr, filt[:, 2::4, 2::4], atol=1e-9)


def _up(pan, gt):
    """A PAN 4x the size of gt (nearest repeat) for shape tests."""
    return np.repeat(np.repeat(pan, 4, axis=1), 4, axis=2)[:, : 4 * gt.shape[1], : 4 * gt.shape[2]]


def test_wald_pan_reductions():
    gt, _, pan = scene(seed=6, bands=8, h=16, w=16)
    big_pan = _up(pan, gt)
    _, p1 = d.wald(gt, big_pan, "wv3", pan_reduction="imresize")
    _, p2 = d.wald(gt, big_pan, "wv3", pan_reduction="mtf")
    filt = correlate(big_pan[0], d.pan_mtf_kernel("wv3")[0], mode="nearest")
    np.testing.assert_allclose(p2[0], filt[2::4, 2::4], atol=1e-9)
    # both are low-pass versions of the same PAN: close in the mean, not identical
    assert abs(p1.mean() - p2.mean()) / p1.mean() < 0.01 and not np.allclose(p1, p2)


def test_wald_torch_batch_equals_numpy_single():
    gt, _, pan = scene(seed=7, bands=4, h=8, w=8)
    big_pan = _up(pan, gt)
    g = torch.from_numpy(np.stack([gt, gt * 0.5]))
    p = torch.from_numpy(np.stack([big_pan, big_pan * 0.5]))
    ms_lr, pan_lr = d.wald(g, p, "ikonos")
    ms1, pan1 = d.wald(gt * 0.5, big_pan * 0.5, "ikonos")
    np.testing.assert_allclose(ms_lr[1].numpy(), ms1, atol=1e-9)
    np.testing.assert_allclose(pan_lr[1].numpy(), pan1, atol=1e-9)


def test_wald_bad_inputs():
    gt = np.zeros((4, 16, 16))
    with pytest.raises(ValueError, match="must be 4x the size"):
        d.wald(gt, np.zeros((1, 16, 16)), "qb")
    with pytest.raises(ValueError, match="not a multiple of the ratio"):
        d.wald(np.zeros((4, 18, 18)), np.zeros((1, 72, 72)), "qb")
    with pytest.raises(ValueError, match="QuickBird images have 4 bands"):
        d.wald(np.zeros((8, 16, 16)), np.zeros((1, 64, 64)), "qb")
    with pytest.raises(ValueError, match="integer >= 2"):
        d.wald(gt, np.zeros((1, 64, 64)), "qb", ratio=4.0)
    with pytest.raises(ValueError, match="one band"):
        d.wald(gt, np.zeros((2, 64, 64)), "qb")
    with pytest.raises(ValueError, match="pan_reduction"):
        d.wald(gt, np.zeros((1, 64, 64)), "qb", pan_reduction="box")


# ------------------------------------------------------------------ the torch-free twins
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 16, 16), (3, 37, 71), (1, 40, 33)])
@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_numpy_operators_match_the_toolbox_and_their_definitions(shape, ratio):
    """degrade_numpy (sumdun fuse --method bt-h without torch): interp23tap against the
    literal toolbox algorithm; the adjoint by <U x, p> = <x, U^T p>; the Gram by the direct sums
    of products. Sizes below and above the dense block (32) and the halo."""
    from sumdun import degrade_numpy as dn

    rng = np.random.default_rng(11)
    x = rng.uniform(0, 2047, shape)
    p = rng.uniform(0, 1, (shape[0], ratio * shape[1], ratio * shape[2]))
    up = dn.interp23tap(x, ratio)
    np.testing.assert_allclose(up, _interp23tap_reference(x, ratio), rtol=0, atol=1e-9)
    lhs = (up * p).sum((-2, -1))
    np.testing.assert_allclose(lhs, (x * dn.interp23tap_adjoint(p, ratio)).sum((-2, -1)),
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(dn.interp23tap_gram(x, ratio),
                               np.einsum("khw,lhw->kl", up, up), rtol=1e-12, atol=0)
    up32 = dn.interp23tap(x.astype(np.float32), ratio)
    assert up32.dtype == np.float32 and np.abs(up32 - up).max() < 2e-6 * 2047
    with pytest.raises(ValueError, match="power-of-2 ratio"):
        dn.interp23tap(x, 3)


def test_numpy_lowpass_equals_imfilter_replicate():
    from sumdun import degrade_numpy as dn

    x = np.random.default_rng(12).uniform(0, 2047, (3, 37, 50))
    k = d.lp_gauss_kernel(4)
    ref = np.stack([correlate(b, k, mode="nearest") for b in x])
    np.testing.assert_allclose(dn.lowpass_replicate(x, k), ref, rtol=0, atol=1e-9 * 2047)
    y32 = dn.lowpass_replicate(x.astype(np.float32), k)
    assert y32.dtype == np.float32 and np.abs(y32 - ref).max() < 1e-5 * 2047
    with pytest.raises(ValueError, match="symmetric"):
        dn.lowpass_replicate(x, np.triu(np.ones((5, 5))))
    np.testing.assert_allclose(dn.inner_products64(x, x[:1]),
                               np.einsum("khw,lhw->kl", x, x[:1]), rtol=1e-13)
    np.testing.assert_allclose(dn.sums64(x.astype(np.float32)),
                               x.astype(np.float32).astype(np.float64).sum((1, 2)), rtol=1e-13)


def test_interp23tap_gradient_is_its_adjoint():
    """interp23tap on a tensor that needs gradients is differentiable, with the exact transpose
    as its backward (gradcheck against finite differences); without gradients the same values."""
    import torch

    from sumdun.degrade import interp23tap

    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: interp23tap(t, 4), (x,))
    assert torch.autograd.gradcheck(lambda t: interp23tap(t, 2), (x,))
    torch.testing.assert_close(interp23tap(x, 4).detach(), interp23tap(x.detach(), 4),
                               rtol=0, atol=0)
