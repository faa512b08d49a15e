"""Classical methods: literal transcriptions of the toolbox (tests/toolbox_reference.py) and
properties that could fail (spectral consistency, PAN detail injected, shapes, errors)."""
import numpy as np
import pytest
import torch

import toolbox_reference as R
from sumdun.degrade import decimate, lp_gauss_kernel, mtf_filter, mtf_kernels
from sumdun.fusion import fuse, list_methods
from sumdun.sensors import get_sensor

from synthetic import scene

METHODS = ["exp", "bt-h", "gsa", "c-gsa", "awlp", "mtf-glp", "mtf-glp-hpm", "mtf-glp-fs", "bdsd",
           "bdsd-pc", "pracs"]


def _inputs(bands, seed=0, h=16):
    gt, ms, pan = scene(seed=seed, bands=bands, h=h, w=h)
    return gt, ms, pan


def test_every_method_is_registered():
    assert set(METHODS) <= set(list_methods())


def test_lp_gauss_kernel_uses_n_not_n_minus_1():
    np.testing.assert_allclose(lp_gauss_kernel(4), R.gauss_fir(0.3, 4, spread=41), atol=1e-14)
    assert not np.allclose(lp_gauss_kernel(4), R.gauss_fir(0.3, 4))


@pytest.mark.parametrize("bands,sensor", [(4, "qb"), (8, "wv3")])
@pytest.mark.parametrize("hpm", [False, True])
def test_mtf_glp_matches_toolbox(bands, sensor, hpm):
    _, ms, pan = _inputs(bands, seed=bands)
    lms = R.interp23tap(R.hwc(ms), 4)
    ref = R.MTF_GLP(lms, pan[0], get_sensor(sensor).ms_gnyq, 4, hpm=hpm)
    out = fuse(ms, pan, "mtf-glp-hpm" if hpm else "mtf-glp", sensor=sensor)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("bands", [4, 8])
def test_bt_h_matches_toolbox(bands, backend):
    """Both implementations (numpy arrays: torch-free; tensors: batched, any device)."""
    _, ms, pan = _inputs(bands, seed=10 + bands)
    lms = R.interp23tap(R.hwc(ms), 4)
    ref = R.BroveyRegHazeMin(lms, pan[0], 4)
    sensor = "wv3" if bands == 8 else "qb"
    wrap = np.asarray if backend == "numpy" else torch.from_numpy

    def run(a, b):
        out = fuse(wrap(a), wrap(b), "bt-h", sensor=sensor)
        assert isinstance(out, np.ndarray) == (backend == "numpy")
        return np.asarray(out)

    out = run(ms, pan)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)
    # float32 in: float32 images, float64 statistics; still within ~1e-6 of the range
    out32 = run(ms.astype(np.float32), pan.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(np.moveaxis(out32, 0, -1), ref, rtol=0, atol=2e-6 * 2047)


def test_bt_h_numpy_batch_and_degenerate_regression_match_torch():
    """A batch, and bands so alike that the normal equations are refused (the pixel
    least-squares fallback), give the same fusion with arrays as with tensors."""
    _, ms, pan = _inputs(4, seed=12)
    _, ms2, pan2 = _inputs(4, seed=13)
    dup = ms.copy()
    dup[1] = dup[0] * 1.5                      # collinear bands: gram is singular
    for a, b in ((np.stack([ms, ms2]), np.stack([pan, pan2])), (dup, pan)):
        np.testing.assert_allclose(
            fuse(a, b, "bt-h", sensor="qb"),
            fuse(torch.from_numpy(a), torch.from_numpy(b), "bt-h", sensor="qb").numpy(),
            rtol=0, atol=1e-9 * 2047)


def test_bt_h_on_arrays_never_imports_torch():
    """``fuse(arrays, method="bt-h")`` and the GeoTIFF path run without loading torch (its
    import is 1.3 s of a 3-second command)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from sumdun.fusion import fuse; "
            "r = np.random.default_rng(0); ms = r.uniform(100, 900, (4, 16, 16)); "
            "pan = r.uniform(100, 900, (1, 64, 64)); out = fuse(ms, pan, 'bt-h', sensor='qb'); "
            "print(out.shape, 'torch' in sys.modules, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(4, 64, 64) False False"


def test_float32_inputs_stay_float32_only_where_the_method_supports_it():
    _, ms, pan = _inputs(4, seed=3)
    ms32, pan32 = ms.astype(np.float32), pan.astype(np.float32)
    assert fuse(ms32, pan32, "exp", sensor="qb").dtype == np.float32
    assert fuse(ms32, pan32, "bdsd", sensor="qb").dtype == np.float64     # float64 inside
    assert fuse(ms32, pan, "bt-h", sensor="qb").dtype == np.float64       # mixed: float64


def test_regression_normal_equations_and_ill_conditioned_fallback():
    from sumdun.methods.classical._common import regress_global
    rng = np.random.default_rng(4)
    a = torch.from_numpy(rng.uniform(100, 2000, (1, 3, 20, 20)))
    y = (0.2 * a[:, :1] + 0.5 * a[:, 1:2] - 0.1 * a[:, 2:] + torch.from_numpy(
        rng.normal(0, 5, (1, 1, 20, 20))))
    ref = np.linalg.lstsq(a[0].reshape(3, -1).T.numpy(), y.reshape(-1).numpy(), rcond=None)[0]
    np.testing.assert_allclose(regress_global(a, y)[0].numpy(), ref, rtol=1e-10)
    # two identical predictors: the normal equations are singular; MATLAB-like lstsq result
    # still reproduces the target's fit
    dup = torch.cat([a[:, :1], a[:, :1], a[:, 1:]], 1)
    w = regress_global(dup, y)[0]
    fit = (w.view(1, -1, 1, 1) * dup).sum(1, keepdim=True)
    best = (torch.from_numpy(ref).view(1, -1, 1, 1) * a).sum(1, keepdim=True)
    torch.testing.assert_close(fit, best, rtol=0, atol=1e-6)


def _highpass(x):
    return x - mtf_filter(x, lp_gauss_kernel(4))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bands,sensor", [(4, "qb"), (8, "wv3")])
def test_properties(method, bands, sensor):
    gt, ms, pan = _inputs(bands, seed=20 + bands, h=24)
    out = fuse(ms, pan, method, sensor=sensor)
    assert out.shape == gt.shape and out.dtype == np.float64 and np.isfinite(out).all()
    assert out.min() > -0.1 * 2047 and out.max() < 1.2 * 2047
    # spectral consistency: the output degraded by the sensor MTF comes back close to the MS
    back = decimate(mtf_filter(out, mtf_kernels(sensor, n_bands=bands)), 4)
    rel = np.abs(back - ms[:, :back.shape[1], :back.shape[2]]) / ms.mean()
    assert np.median(rel) < 0.08
    # PAN detail: high-pass of the output correlates with the PAN's (not for EXP)
    r = np.corrcoef(_highpass(out).mean(0).ravel(), _highpass(pan)[0].ravel())[0, 1]
    assert (r > 0.6) if method != "exp" else (r < 0.6)


def test_torch_batch_and_numpy_single_agree():
    _, ms, pan = _inputs(4, seed=30)
    _, ms2, pan2 = _inputs(4, seed=31)
    b = fuse(torch.from_numpy(np.stack([ms, ms2])), torch.from_numpy(np.stack([pan, pan2])),
             "mtf-glp-hpm", sensor="qb")
    assert isinstance(b, torch.Tensor) and b.shape == (2, 4, 64, 64)
    np.testing.assert_allclose(b[1].numpy(), fuse(ms2, pan2, "mtf-glp-hpm", sensor="qb"),
                               atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_constant_band_is_a_clear_error(method):
    _, ms, pan = _inputs(4, seed=40)
    bad = ms.copy()
    bad[2] = 300.0
    with pytest.raises(ValueError, match=r"ms band\(s\) \[2\] are constant"):
        fuse(bad, pan, method, sensor="qb")
    with pytest.raises(ValueError, match=r"pan band\(s\) \[0\] are constant"):
        fuse(ms, np.full_like(pan, 7.0), method, sensor="qb")


@pytest.mark.parametrize("bands,sensor", [(4, "qb"), (8, "wv2")])
@pytest.mark.parametrize("block", [None, 32])
def test_bdsd_matches_toolbox_global_and_local(bands, sensor, block):
    _, ms, pan = _inputs(bands, seed=50 + bands, h=16)
    s = get_sensor(sensor)
    lms = R.interp23tap(R.hwc(ms), 4)
    ref = R.BDSD(lms, pan[0], 4, block, s.ms_gnyq, s.pan_gnyq)
    out = fuse(ms, pan, "bdsd", sensor=sensor, block=block)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)


@pytest.mark.parametrize("bands,sensor", [(4, "ikonos"), (8, "wv3")])
def test_bdsd_pc_matches_toolbox(bands, sensor):
    _, ms, pan = _inputs(bands, seed=60 + bands, h=16)
    s = get_sensor(sensor)
    ref = R.BDSD_PC(R.interp23tap(R.hwc(ms), 4), pan[0], 4, s.ms_gnyq, s.pan_gnyq)
    out = fuse(ms, pan, "bdsd-pc", sensor=sensor)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)


@pytest.mark.parametrize("bands,sensor", [(4, "ge1"), (8, "wv3")])
def test_pracs_matches_toolbox(bands, sensor):
    _, ms, pan = _inputs(bands, seed=70 + bands, h=16)
    ref = R.PRACS(R.interp23tap(R.hwc(ms), 4), pan[0], 4)
    out = fuse(ms, pan, "pracs", sensor=sensor)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)


@pytest.mark.parametrize("bands,sensor", [(4, "qb"), (8, "wv3")])
def test_mtf_glp_fs_matches_toolbox(bands, sensor):
    _, ms, pan = _inputs(bands, seed=80 + bands, h=16)
    ref = R.MTF_GLP_FS(R.interp23tap(R.hwc(ms), 4), pan[0], 4, get_sensor(sensor).ms_gnyq)
    out = fuse(ms, pan, "mtf-glp-fs", sensor=sensor)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)


@pytest.mark.parametrize("bands,sensor", [(4, "qb"), (8, "wv3")])
def test_gsa_and_awlp_match_toolbox(bands, sensor):
    _, ms, pan = _inputs(bands, seed=95 + bands, h=16)
    i_ms = R.interp23tap(R.hwc(ms), 4)
    ref = R.GSA(i_ms, pan[0], R.hwc(ms), 4)
    out = fuse(ms, pan, "gsa", sensor=sensor)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)
    ref = R.AWLP(i_ms, pan[0], 4)
    out = fuse(ms, pan, "awlp", sensor=sensor)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)


def test_starck_murtagh_lowpass_properties():
    """Unit DC gain, zero phase, the interior equals h convolved 4 times per axis (no filter
    dilation between levels), and the literal ndwt2/indwt2 steps agree on every pixel."""
    import torch

    from sumdun.methods.classical.wavelet import starck_murtagh_lowpass

    rng = np.random.default_rng(3)
    img = rng.normal(500, 100, (40, 52))
    ours = starck_murtagh_lowpass(torch.from_numpy(img)[None, None], 4)[0, 0].numpy()
    np.testing.assert_allclose(ours, R.starck_murtagh_lowpass(img, 4), atol=1e-9)
    const = starck_murtagh_lowpass(torch.full((1, 1, 20, 20), 7.0, dtype=torch.float64), 4)
    np.testing.assert_allclose(const.numpy(), 7.0, atol=1e-12)
    k1 = np.array([1, 4, 6, 4, 1]) / 16
    k4 = np.convolve(np.convolve(k1, k1), np.convolve(k1, k1))  # 17 taps
    delta = np.zeros((41, 41))
    delta[20, 20] = 1.0
    psf = starck_murtagh_lowpass(torch.from_numpy(delta)[None, None], 4)[0, 0].numpy()
    np.testing.assert_allclose(psf[12:29, 12:29], np.outer(k4, k4), atol=1e-15)
    assert abs(psf).sum() == pytest.approx(1.0)


def test_bdsd_block_errors():
    _, ms, pan = _inputs(4, seed=90, h=16)
    with pytest.raises(ValueError, match="must be even, a multiple of the ratio"):
        fuse(ms, pan, "bdsd", sensor="qb", block=24)
    with pytest.raises(ValueError, match="must be even, a multiple of the ratio"):
        fuse(ms, pan, "bdsd", sensor="qb", block=48)  # does not divide 64


@pytest.mark.parametrize("bands,sensor", [(4, "qb"), (8, "wv3")])
def test_c_gsa_matches_toolbox_for_a_given_segmentation(bands, sensor):
    _, ms, pan = _inputs(bands, seed=40 + bands, h=24)
    lms = R.interp23tap(R.hwc(ms), 4)
    ref_lr = R.gen_LP_image_GSA(lms, pan[0], R.hwc(ms), 4)
    # a segmentation with 4 regions of different shapes and sizes, labels not 0..K-1
    yy, xx = np.mgrid[:96, :96]
    seg = np.where(yy < 30, 7, np.where(xx < 40, 2, np.where(xx + yy < 130, 11, 5)))
    ref = R.GS_Segm(lms, pan[0], ref_lr, seg)
    out = fuse(ms, pan, "c-gsa", sensor=sensor, segments=seg)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)
    # one segment covering everything: GSA-like global gains, different from the local ones
    one = fuse(ms, pan, "c-gsa", sensor=sensor, segments=np.zeros((96, 96), int))
    np.testing.assert_allclose(np.moveaxis(one, 0, -1),
                               R.GS_Segm(lms, pan[0], ref_lr, np.zeros((96, 96), int)),
                               rtol=0, atol=1e-6 * 2047)
    assert np.abs(one - out).max() > 1.0


def test_c_gsa_default_segments_with_kmeans_are_deterministic_and_reproduce_the_toolbox():
    from sumdun.methods.classical.kmeans import kmeans

    _, ms, pan = _inputs(4, seed=50, h=24)
    lms = R.interp23tap(R.hwc(ms), 4)
    feats = torch.from_numpy(R.k_means_features(lms)).float().T
    labels = kmeans(feats, 5, seed=0).numpy().reshape(96, 96)
    assert len(np.unique(labels)) == 5
    ref = R.GS_Segm(lms, pan[0], R.gen_LP_image_GSA(lms, pan[0], R.hwc(ms), 4), labels)
    out = fuse(ms, pan, "c-gsa", sensor="qb")
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), ref, rtol=0, atol=1e-6 * 2047)
    np.testing.assert_array_equal(out, fuse(ms, pan, "c-gsa", sensor="qb"))


def test_kmeans_recovers_separated_clusters_and_handles_duplicates():
    from sumdun.methods.classical.kmeans import kmeans

    rng = np.random.default_rng(6)
    centres = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]], float)
    truth = rng.integers(0, 4, 2000)
    x = torch.from_numpy(centres[truth] + rng.normal(0, 0.3, (2000, 3))).T
    labels = kmeans(x, 4, seed=1).numpy()
    # the same partition up to a relabelling: each found cluster is one true cluster
    pairs = {(int(a), int(b)) for a, b in zip(labels, truth)}
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4
    # fewer distinct points than clusters: still k labels' worth of valid output, no NaN
    same = torch.zeros(2, 50, dtype=torch.float64)
    same[:, 25:] = 1.0
    lab = kmeans(same, 3, seed=0)
    assert lab.shape == (50,) and set(lab.tolist()) <= {0, 1, 2}
    assert len(set(lab[:25].tolist())) == 1 and len(set(lab[25:].tolist())) == 1
    with pytest.raises(ValueError, match="cannot make 3 clusters from 2 points"):
        kmeans(same[:, :2], 3)


def test_c_gsa_bad_segments_is_a_clear_error():
    _, ms, pan = _inputs(4, seed=1)
    with pytest.raises(ValueError, match="integer label map"):
        fuse(ms, pan, "c-gsa", sensor="qb", segments=np.zeros((10, 10), int))


@pytest.fixture(scope="module")
def ratio_two_pair():
    """Wald's protocol at ratio 2 on a land-cover scene (a Sentinel-2-like 10 m / 20 m pair)."""
    from sumdun.degrade import wald
    from synthetic import landcover_scene

    ms, pan, _ = landcover_scene(seed=0, bands=4, h=128, w=128, ratio=2)
    return ms, *wald(ms, pan, "generic", ratio=2)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "exp"])
def test_every_method_fuses_a_ratio_2_pair_better_than_interpolation(method, ratio_two_pair):
    """Every method takes ratio 2 (BDSD decimated its PAN at the toolbox's ratio-4 phase, 2,
    and failed there) and beats EXP on the interior."""
    ref, ms_lr, pan_lr = ratio_two_pair
    out = fuse(ms_lr, pan_lr, method, sensor=None, ratio=2)
    exp = fuse(ms_lr, pan_lr, "exp", sensor=None, ratio=2)
    assert out.shape == ref.shape
    err = {k: np.abs(v - ref)[:, 8:-8, 8:-8].mean() for k, v in (("m", out), ("exp", exp))}
    assert err["m"] < 0.85 * err["exp"], err
