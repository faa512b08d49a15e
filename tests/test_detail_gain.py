"""Per-band detail gain calibrated at the reduced scale (``detail_gain``): the estimate is the
least-squares gain of the fusion's high-pass on the MS's, per band, shrunk by the share and
clipped; applying it scales only the high-pass of its own band."""
import numpy as np
import pytest
import torch

from sumdun.degrade import mtf_filter
from sumdun.kernels import mtf_kernels
from sumdun.methods.neural.detail_gain import (LIMITS, apply_detail_gain,
                                               estimate_detail_gain, highpass, reduced_pair)


def _image(c=3, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, c, n, n, generator=g, dtype=torch.float64) * 100 + 50


def test_highpass_is_the_image_minus_its_generic_mtf_lowpass():
    x = _image()
    k = mtf_kernels("generic", 4, n_bands=1)
    torch.testing.assert_close(highpass(x), x - mtf_filter(x, k / k.sum()))
    # a constant image has no detail
    assert float(highpass(torch.full((1, 2, 16, 16), 7.0, dtype=torch.float64)).abs().max()) \
        < 1e-9


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_gain_undoes_a_per_band_over_or_under_injection(share):
    """A fusion whose detail is k times the MS's in band b gets 1 + share (1/k - 1) there: the
    gain belongs to its own band (a swapped axis would mix 2.0 and 0.8 up)."""
    ms = _image()
    k = torch.tensor([2.0, 0.8, 1.0], dtype=torch.float64).view(1, 3, 1, 1)
    g = estimate_detail_gain(ms * k, ms, share)
    want = 1 + share * (1 / k.flatten() - 1)
    torch.testing.assert_close(g[0], want)


def test_gain_is_clipped_and_a_band_without_detail_gets_one():
    ms = _image(c=2)
    fused = ms.clone()
    fused[:, 0] *= 4.0       # 4x too much detail: 1/4 -> clipped to the lower limit
    fused[:, 1] = 3.0        # no detail at all: nothing to regress, gain 1
    g = estimate_detail_gain(fused, ms, 1.0)
    assert g[0].tolist() == [LIMITS[0], 1.0]
    assert estimate_detail_gain(ms * 0.1, ms, 1.0)[0].tolist() == [LIMITS[1]] * 2


def test_apply_scales_only_the_highpass_of_each_band():
    x = _image()
    one = apply_detail_gain(x, torch.ones(1, 3))
    torch.testing.assert_close(one, x)
    g = torch.tensor([[0.5, 1.0, 1.5]])
    out = apply_detail_gain(x, g)
    hp = highpass(x)
    torch.testing.assert_close(out[:, 0], x[:, 0] - 0.5 * hp[:, 0])
    torch.testing.assert_close(out[:, 1], x[:, 1])
    torch.testing.assert_close(out[:, 2], x[:, 2] + 0.5 * hp[:, 2])
    # a flat band has no detail to scale (the low-pass kernel sums to 1)
    flat = torch.full((1, 3, 16, 16), 250.0, dtype=torch.float64)
    torch.testing.assert_close(apply_detail_gain(flat, g), flat, atol=1e-9, rtol=0)


def test_reduced_pair_is_walds_reduction_of_the_whole_ratio_part():
    from sumdun.degrade import wald

    ms, pan = _image(n=34), _image(c=1, n=136, seed=1)
    ms_c, ms_rr, pan_rr = reduced_pair(ms, pan, 4)
    assert ms_c.shape[-2:] == (32, 32) and ms_rr.shape[-2:] == (8, 8)
    want_ms, want_pan = wald(ms[..., :32, :32], pan[..., :128, :128], "generic", 4)
    torch.testing.assert_close(ms_rr, want_ms)
    torch.testing.assert_close(pan_rr, want_pan)


def test_share_outside_zero_to_one_is_refused():
    from sumdun.models import create_model

    for bad in (-0.1, 1.5, True):
        with pytest.raises(ValueError, match="detail_gain must be a number from 0"):
            create_model("sumdun_tiny", detail_gain=bad)
    assert create_model("sumdun_tiny", detail_gain=0.5).cfg.detail_gain == 0.5
    assert np.isclose(create_model("sumdun_tiny").cfg.detail_gain, 0.0)
