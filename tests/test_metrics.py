"""Quality indices against literal transcriptions of the toolbox (tests/toolbox_reference.py),
hand-computed cases, closed forms and invariants."""
import math

import numpy as np
import pytest
import torch

import toolbox_reference as R
from sumdun import metrics as M
from sumdun.degrade import imresize, interp23tap, mtf_filter, mtf_kernels

from synthetic import scene

REL = 1e-6


def _case(bands, h=24, w=24, seed=0, noise=25.0):
    """Realistic 11-bit images: gt, a fused estimate (blur + noise + gain), ms, pan."""
    gt, ms, pan = scene(seed=seed, bands=bands, h=h, w=w)
    rng = np.random.default_rng(seed + 100)
    fused = interp23tap(ms) * rng.uniform(0.97, 1.03, (bands, 1, 1)) + rng.normal(0, noise, gt.shape)
    return gt, np.clip(fused, 0, 2047), ms, pan


@pytest.fixture(params=[4, 8], ids=["4band", "8band"])
def case(request):
    return _case(request.param, seed=request.param)


def close(a, b, rel=REL):
    assert a == pytest.approx(b, rel=rel, abs=1e-12)


# ------------------------------------------------------------ against the toolbox transcription
def test_reduced_indices_match_toolbox(case):
    gt, fused, _, _ = case
    G, Fu = R.hwc(gt), R.hwc(fused)
    close(M.q2n(fused, gt), R.q2n(G, Fu))
    close(M.q_avg(fused, gt), R.Q(G, Fu))
    np.testing.assert_allclose(M.q_index(fused, gt),
                               [R.img_qi(G[..., b], Fu[..., b], 32) for b in range(G.shape[2])],
                               rtol=REL)
    close(M.sam(fused, gt), R.SAM(G, Fu))
    close(M.sam(fused, gt, degrees=False), R.SAM(G, Fu) * math.pi / 180)
    close(M.ergas(fused, gt, 4), R.ERGAS(G, Fu, 4))
    close(M.scc(fused, gt), R.SCC(Fu, G))


@pytest.mark.parametrize("bands,hw", [(8, (70, 75)), (3, (40, 33)), (5, (64, 64))])
def test_q2n_padding_and_band_padding_match_toolbox(bands, hw):
    gt, fused, _, _ = _case(bands, 20, 20, seed=bands)
    g = np.pad(gt, ((0, 0), (0, hw[0] - 80 if hw[0] > 80 else 0), (0, 0)), mode="reflect")[:, :hw[0], :hw[1]]
    f = np.pad(fused, ((0, 0), (0, hw[0] - 80 if hw[0] > 80 else 0), (0, 0)), mode="reflect")[:, :hw[0], :hw[1]]
    close(M.q2n(f, g), R.q2n(R.hwc(g), R.hwc(f)))
    close(M.q2n(f, g, block=16, shift=8), R.q2n(R.hwc(g), R.hwc(f), 16, 8))


def test_q2n_chunked_moments_match_toolbox(monkeypatch):
    """Distinct-block Q2n sums block moments a few block rows at a time: several chunks and a
    shorter last one (5 block rows, 2 per chunk) must give the toolbox's value."""
    import sumdun.metrics.reduced as red

    gt, fused, _, _ = _case(8, 40, 24, seed=11)  # 160 x 96 -> 5 x 3 blocks of 32
    one_row = 8 * 32 * gt.shape[-1] * 8          # bytes of one block row of one image
    monkeypatch.setattr(red, "_Q2N_CHUNK_BYTES", 2 * one_row)
    close(M.q2n(fused, gt), R.q2n(R.hwc(gt), R.hwc(fused)))


def test_q2n_quantize_option_matches_toolbox_without_rounding():
    gt, fused, _, _ = _case(4, seed=3)
    g, f = gt / 2047, fused / 2047
    close(M.q2n(f, g, quantize=False), R.q2n(R.hwc(g), R.hwc(f), quantize=False))
    with pytest.warns(UserWarning, match="normalised to \\[0, 1\\]"):
        degenerate = M.q2n(f, g)
    assert abs(degenerate - M.q2n(f, g, quantize=False)) > 0.01  # the trap is real


def test_full_resolution_indices_match_toolbox(case):
    gt, fused, ms, pan = case
    sensor = "wv3" if gt.shape[0] == 8 else "qb"
    msexp = interp23tap(ms)
    pan_lp = interp23tap(imresize(pan, 0.25))
    ds_ref = R.D_s(R.hwc(fused), R.hwc(msexp), pan[0], pan_lp[0])
    dlk_ref = 1 - R.q2n(R.hwc(msexp), R.hwc(mtf_filter(fused, mtf_kernels(sensor))))
    close(M.d_s(fused, ms, pan), ds_ref)
    close(M.d_lambda_k(fused, ms, sensor), dlk_ref)
    close(M.hqnr(fused, ms, pan, sensor), (1 - dlk_ref) * (1 - ds_ref))
    close(M.d_lambda(fused, ms), R.D_lambda(R.hwc(fused), R.hwc(msexp)))
    out = M.full_resolution(fused, ms, pan, sensor)
    close(out["HQNR"], (1 - dlk_ref) * (1 - ds_ref))
    assert 0 <= out["D_lambda"] < 0.2 and 0 <= out["D_S"] < 0.2


# ------------------------------------------------------------ hand-computed cases
def test_uqi_hand_computed_single_window():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])[None]
    y = np.array([[2.0, 2.0], [3.0, 5.0]])[None]
    # mx = 2.5, my = 3, var_x = 5/3, var_y = 2, cov = 5/3 (n-1 = 3): Q = 50 / 55.91666...
    expected = 4 * (5 / 3) * 2.5 * 3 / ((5 / 3 + 2) * (2.5**2 + 3**2))
    assert expected == pytest.approx(0.894187779433681)
    assert M.q_index(x, y, block=2)[0] == pytest.approx(expected, rel=1e-12)
    fx, fy = torch.tensor(x)[None], torch.tensor(y)[None]
    assert M.block_uqi(fx, fy, 2)[0, 0, 0, 0].item() == pytest.approx(expected, rel=1e-12)


def test_q_special_cases_of_img_qi():
    a = np.full((1, 4, 4), 3.0)
    b = np.full((1, 4, 4), 5.0)
    # both windows constant: 2 m_a m_b / (m_a^2 + m_b^2)
    assert M.q_index(a, b, block=4)[0] == pytest.approx(2 * 15 / 34)
    assert M.q_index(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), block=4)[0] == 1.0


def test_sam_hand_value():
    gt = np.zeros((2, 1, 2))
    fu = np.zeros((2, 1, 2))
    gt[:, 0, 0], fu[:, 0, 0] = (1, 0), (1, 1)      # 45 degrees
    gt[:, 0, 1], fu[:, 0, 1] = (0, 2), (0, 5)      # 0 degrees
    assert M.sam(fu, gt) == pytest.approx(22.5)
    gt[:, 0, 1] = 0  # a zero spectrum is left out of the mean
    assert M.sam(fu, gt) == pytest.approx(45.0)


def test_ergas_hand_value():
    gt = np.stack([np.full((4, 4), 100.0), np.full((4, 4), 200.0)])
    fu = gt + np.stack([np.full((4, 4), 10.0), np.full((4, 4), -20.0)])
    # RMSE/mean = 0.1 for both bands -> 100/4 * sqrt(0.01) = 2.5
    assert M.ergas(fu, gt, ratio=4) == pytest.approx(2.5)
    assert M.ergas(fu, gt, ratio=2) == pytest.approx(5.0)


def test_psnr_hand_value():
    gt = np.zeros((1, 10, 10))
    fu = gt.copy()
    fu[0, 0, :] = 10.0  # MSE = 10 over 100 pixels = 10 ... 100 * 10 / 100
    assert M.psnr(fu, gt, data_range=100.0) == pytest.approx(10 * math.log10(100**2 / 10))


def test_onion_mult_is_complex_quaternion_and_octonion_product():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=2), rng.normal(size=2)
    z = complex(*x) * complex(*y)
    np.testing.assert_allclose(M.onion_mult(torch.tensor(x), torch.tensor(y)).numpy(),
                               [z.real, z.imag])
    for n in (4, 8):  # composition algebras: |x y| = |x| |y|
        x, y = torch.tensor(rng.normal(size=n)), torch.tensor(rng.normal(size=n))
        assert M.onion_mult(x, y).norm().item() == pytest.approx((x.norm() * y.norm()).item(), rel=1e-12)
    # matches the literal recursive transcription
    np.testing.assert_allclose(M.onion_mult(x, y).numpy(), R.onion_mult(list(x.numpy()), list(y.numpy())))


# ------------------------------------------------------------ invariants
def test_identity_gives_perfect_scores(case):
    gt, _, ms, pan = case
    out = M.reduced_resolution(gt, gt, data_range=2047)
    assert out["Q2n"] == pytest.approx(1.0) and out["Q_avg"] == pytest.approx(1.0)
    assert out["SAM"] == pytest.approx(0.0, abs=1e-5) and out["ERGAS"] == 0.0
    assert out["SCC"] == pytest.approx(1.0) and out["PSNR"] == math.inf


def test_spectral_scaling_keeps_sam_zero_and_lowers_q(case):
    gt, _, _, _ = case
    assert M.sam(gt * 1.7, gt) == pytest.approx(0.0, abs=1e-5)
    assert M.scc(gt * 1.7, gt) == pytest.approx(1.0)  # gradients scale too
    assert M.q_avg(gt * 1.2, gt) < 0.99
    # per-band gains change the spectrum: SAM > 0
    gains = np.linspace(0.8, 1.2, gt.shape[0])[:, None, None]
    assert M.sam(gt * gains, gt) > 0.5


def test_known_perturbations():
    gt, _, _, _ = _case(4, seed=11)
    # constant offset: ERGAS = 100/ratio * sqrt(mean_c (d / mean_c)^2)
    fu = gt + 20.0
    means = gt.mean(axis=(1, 2))
    assert M.ergas(fu, gt) == pytest.approx(25 * math.sqrt(np.mean((20 / means) ** 2)))
    assert M.psnr(fu, gt, 2047) == pytest.approx(10 * math.log10(2047**2 / 400))
    # gradients are unchanged by an offset except on the zero-padded Sobel border (toolbox)
    assert 0.999 < M.scc(fu, gt) < 1.0
    # worse noise -> worse every index
    rng = np.random.default_rng(0)
    a = M.reduced_resolution(gt + rng.normal(0, 5, gt.shape), gt, data_range=2047)
    b = M.reduced_resolution(gt + rng.normal(0, 50, gt.shape), gt, data_range=2047)
    assert a["Q2n"] > b["Q2n"] and a["Q_avg"] > b["Q_avg"] and a["SAM"] < b["SAM"]
    assert a["ERGAS"] < b["ERGAS"] and a["SCC"] > b["SCC"] and a["PSNR"] > b["PSNR"]


def test_full_resolution_ranks_detail_injection():
    gt, fused, ms, pan = _case(4, seed=12, noise=0.0)
    exp = interp23tap(ms)
    good = exp + (pan - interp23tap(imresize(pan, 0.25)))  # PAN detail injected
    ds_exp, ds_good = M.d_s(exp, ms, pan), M.d_s(good, ms, pan)
    assert ds_good < ds_exp
    assert M.hqnr(good, ms, pan, "qb") > M.hqnr(exp, ms, pan, "qb")


def test_d_lambda_k_decimated_variant():
    gt, fused, ms, pan = _case(4, 32, 32, seed=13)
    v = M.d_lambda_k(fused, ms, "qb", decimate=True)
    lp = mtf_filter(fused, mtf_kernels("qb"))[:, 2::4, 2::4]
    assert v == pytest.approx(1 - R.q2n(R.hwc(ms), R.hwc(lp)), rel=REL)


# ------------------------------------------------------------ batches, torch, protocol options
def test_batch_gives_one_value_per_image_and_torch_matches_numpy():
    g1, f1, _, _ = _case(4, seed=20)
    g2, f2, _, _ = _case(4, seed=21)
    gb, fb = np.stack([g1, g2]), np.stack([f1, f2])
    for fn in (M.sam, M.ergas, M.scc, M.q2n, M.q_avg):
        v = fn(fb, gb)
        assert isinstance(v, np.ndarray) and v.shape == (2,)
        assert v[1] == pytest.approx(fn(f2, g2), rel=1e-12)
        t = fn(torch.from_numpy(fb).float(), torch.from_numpy(gb).float())
        assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
        np.testing.assert_allclose(t.numpy(), v, rtol=1e-5)  # float32 inputs, float64 inside
    assert M.q_index(fb, gb).shape == (2, 4)
    rr = M.reduced_resolution(fb, gb, data_range=2047)
    assert rr["PSNR"].shape == (2,) and rr["Q2n"][0] == pytest.approx(M.q2n(f1, g1))


def test_border_cut_is_the_toolbox_dim_cut():
    gt, fused, _, _ = _case(4, 24, 24, seed=22)
    out = M.reduced_resolution(fused, gt, border=21, data_range=2047)
    g, f = gt[:, 20:96 - 21, 20:96 - 21], fused[:, 20:96 - 21, 20:96 - 21]  # 1-based 21:end-21
    assert out["SAM"] == pytest.approx(M.sam(f, g))
    assert out["Q2n"] == pytest.approx(R.q2n(R.hwc(g), R.hwc(f)), rel=REL)
    clipped = M.reduced_resolution(fused * 1.5, gt, data_range=2047, clip=2048)
    assert clipped["PSNR"] == pytest.approx(M.psnr(np.clip(fused * 1.5, 0, 2048), gt, 2047))


# ------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors():
    gt, fused, ms, pan = _case(4, seed=30)
    with pytest.raises(ValueError, match="same shape"):
        M.sam(fused[:, :-1], gt)
    with pytest.raises(ValueError, match="ratio must be an integer"):
        M.ergas(fused, gt, ratio=0)
    with pytest.raises(ValueError, match="ratio must be an integer"):
        M.ergas(fused, gt, ratio=2.5)
    with pytest.raises(ValueError, match="at least one 32 x 32 block"):
        M.q2n(fused[:, :20, :20], gt[:, :20, :20])
    with pytest.raises(ValueError, match="at least one 32 x 32 block"):
        M.q_avg(fused[:, :20], gt[:, :20])
    bad = fused.copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        M.q2n(bad, gt)
    bad[0, 3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        M.reduced_resolution(bad, gt, data_range=2047)
    zero = gt.copy()
    zero[2] = 0
    with pytest.raises(ValueError, match=r"band\(s\) \[2\] are all zero"):
        M.ergas(fused, zero)
    with pytest.raises(ValueError, match="explicit positive data_range"):
        M.reduced_resolution(fused, gt)
    with pytest.raises(ValueError, match="multiples of the block size"):
        M.d_s(fused[:, :80, :80], ms[:, :20, :20], pan[:, :80, :80])
    with pytest.raises(ValueError, match="upsampled by the ratio"):
        M.d_s(fused, ms[:, :10], pan)
    with pytest.raises(ValueError, match="one band on the fused grid"):
        M.d_s(fused, ms, np.concatenate([pan, pan]))
    flat = np.zeros_like(pan)
    flat[:, :32, :32] = 0
    with pytest.raises(ValueError, match="constant"):
        M.d_s(np.zeros_like(fused), ms, flat)
