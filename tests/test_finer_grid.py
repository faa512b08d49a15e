"""Ratio-2 pairs through ratio-4 weights (``methods/neural/finer_grid.py``): the PAN is
interpolated onto a grid twice as fine, where the pair's alignment becomes the network's, and the
fusion is decimated back onto the PAN grid."""
import numpy as np
import pytest
import torch

from sumdun.degrade import interp23tap
from sumdun.methods.neural.finer_grid import check_ratio, decimate2, halfband, upsample2
from synthetic import landcover_scene


def test_halfband_is_the_toolbox_interpolator_centred():
    h, reach = halfband()
    assert h[reach] == 1 and h.sum() == pytest.approx(2)
    assert np.allclose(h, h[::-1])  # symmetric: no shift
    assert np.all(h[reach + 2::2] == 0)  # half-band: zero at the other even offsets


def test_upsample2_keeps_the_samples_and_matches_interp23tap_shifted_by_one():
    x = torch.as_tensor(np.random.default_rng(0).random((1, 2, 40, 40)))
    up = upsample2(x)
    assert up.shape == (1, 2, 80, 80)
    assert torch.allclose(up[..., ::2, ::2], x, atol=1e-12)
    # interp23tap keeps sample i at 2i + 1; away from the (circular vs reflected) borders the
    # two interpolations agree once that one-pixel shift is undone
    ref = interp23tap(x, 2)
    assert torch.allclose(up[..., 24:56, 24:56], ref[..., 25:57, 25:57], atol=1e-10)


def test_the_ratio_2_alignment_becomes_the_ratio_4_alignment():
    """MS pixel i sits at PAN pixel 2i + 1 in a ratio-2 pair (the toolbox's interp23tap) and
    at 4i + 2 in a ratio-4 pair: a PAN impulse at 2i + 1 lands at 4i + 2 of the finer grid."""
    pan = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    pan[..., 2 * 5 + 1, 2 * 7 + 1] = 1
    up = upsample2(pan)
    assert tuple(np.unravel_index(int(up.argmax()), up.shape[-2:])) == (4 * 5 + 2, 4 * 7 + 2)


def test_decimate2_inverts_upsample2_on_band_limited_images_and_keeps_constants():
    i, j = np.mgrid[:48, :48]
    x = torch.tensor(np.sin(2 * np.pi * i / 8 + 0.3) * np.cos(2 * np.pi * j / 10.4))[None, None]
    assert (decimate2(upsample2(x)) - x)[..., 12:-12, 12:-12].abs().max() < 1e-4
    assert torch.allclose(decimate2(torch.full((1, 1, 32, 32), 7.0)), torch.tensor(7.0))
    # decimation low-passes: a checkerboard at the fine grid's Nyquist disappears
    cb = torch.tensor((-1.0) ** np.add.outer(np.arange(32), np.arange(32)))[None, None]
    assert decimate2(cb)[..., 4:-4, 4:-4].abs().max() < 1e-3


@pytest.mark.parametrize("ratio,k", [(4, 1), (2, 2)])
def test_check_ratio(ratio, k):
    assert check_ratio(ratio, 4) == k


@pytest.mark.parametrize("ratio", [3, 8])
def test_other_ratios_are_refused(ratio):
    with pytest.raises(ValueError, match=f"ratio {ratio} cannot be fused"):
        check_ratio(ratio, 4)


def test_sumdun_fuses_a_ratio_2_pair_better_than_interpolation():
    """Wald's protocol at ratio 2 on a land-cover scene with textured built-up areas: SUM-DUN's
    fusion on the PAN grid is far closer to the reference than EXP (interpolation); fused with
    the PAN one pixel off (a misplaced finer grid) it is worse."""
    from sumdun.degrade import wald
    from sumdun.fusion import fuse
    from sumdun.weights import available

    if "sumdun_small" not in available():
        pytest.skip("no shipped weights")
    ms, pan, _ = landcover_scene(seed=0, bands=4, h=128, w=128, ratio=2)
    ms_lr, pan_lr = wald(ms, pan, "generic", ratio=2)
    err = {}
    for name, p in (("sumdun", pan_lr), ("shifted", np.roll(pan_lr, 1, axis=-1))):
        out = fuse(ms_lr, p, "sumdun", sensor=None, ratio=2, prompt=None)
        assert out.shape == ms.shape
        err[name] = np.abs(out - ms)[:, 8:-8, 8:-8].mean()
    exp = fuse(ms_lr, pan_lr, "exp", sensor=None, ratio=2)
    err["exp"] = np.abs(exp - ms)[:, 8:-8, 8:-8].mean()
    assert err["sumdun"] < 0.8 * err["exp"], err
    assert err["sumdun"] < 0.9 * err["shifted"], err
