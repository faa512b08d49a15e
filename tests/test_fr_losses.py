"""Full-resolution losses (Z-PNN): zero where the degradation model holds, growing with a
spectral error; the spatial term rewards PAN detail; both differentiable and batched."""
import numpy as np
import pytest
import torch

from sumdun.degrade import decimate, interp23tap, mtf_filter, mtf_kernels
from sumdun.engine.fr_losses import (local_correlation, spatial_consistency_loss,
                                     spectral_consistency_loss)

from synthetic import scene


def _pair(seed=0):
    gt, ms, pan = scene(seed=seed, bands=4, h=32, w=32)
    return (torch.from_numpy(gt)[None], torch.from_numpy(ms)[None], torch.from_numpy(pan)[None])


def test_spectral_loss_is_zero_on_the_degradation_model_and_grows_with_error():
    gt, _, _ = _pair()
    ms = decimate(mtf_filter(gt, torch.from_numpy(mtf_kernels("qb", 4))), 4)  # ms = D(gt)
    assert float(spectral_consistency_loss(gt, ms, "qb")) == pytest.approx(0.0, abs=1e-9)
    losses = []
    for err in (0.02, 0.05, 0.1):
        bad = gt.clone()
        bad[:, 2] *= 1 + err  # a gain error on one band
        losses.append(float(spectral_consistency_loss(bad, ms, "qb")))
    assert 0 < losses[0] < losses[1] < losses[2]
    # one band off by 10 %: the mean |error| is a quarter of 10 % of that band's mean
    assert losses[2] == pytest.approx(0.1 * float(ms[:, 2].mean()) / 4, rel=0.02)
    with pytest.raises(ValueError, match="must be ms"):
        spectral_consistency_loss(gt[..., :64], ms, "qb")


def test_local_correlation_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(1, 2, 9, 9, generator=g, dtype=torch.float64), \
        torch.rand(1, 1, 9, 9, generator=g, dtype=torch.float64)
    rho = local_correlation(x, y, 4)
    for c in range(2):
        for i in range(6):
            for j in range(6):
                a = x[0, c, i:i + 4, j:j + 4].flatten().numpy()
                b = y[0, 0, i:i + 4, j:j + 4].flatten().numpy()
                assert float(rho[0, c, i, j]) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-7)


def test_spatial_loss_rewards_pan_consistent_detail():
    """EXP (no PAN detail) scores worse than EXP with the PAN's high frequencies injected, and
    worse than the true high-resolution image; noise instead of detail does not help."""
    gt, ms, pan = _pair(1)
    exp = interp23tap(ms, 4)
    detail = pan - mtf_filter(pan, torch.ones(1, 5, 5, dtype=pan.dtype) / 25)
    injected = exp + detail
    noisy = exp + torch.randn(exp.shape, generator=torch.Generator().manual_seed(2),
                              dtype=exp.dtype) * float(detail.std())
    loss = {k: float(spatial_consistency_loss(v, ms, pan, "qb"))
            for k, v in (("exp", exp), ("injected", injected), ("gt", gt), ("noisy", noisy))}
    assert loss["injected"] < loss["exp"] and loss["gt"] < loss["exp"]
    assert loss["noisy"] > loss["injected"]


def test_losses_are_differentiable_and_batched():
    gt, ms, pan = _pair(3)
    gt2, ms2, pan2 = _pair(4)
    f = torch.cat([gt, gt2]).requires_grad_(True)
    m, p = torch.cat([ms, ms2]), torch.cat([pan, pan2])
    (spectral_consistency_loss(f, m, "qb") + spatial_consistency_loss(f, m, p, "qb")).backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    one = spectral_consistency_loss(gt, ms, "qb") + spectral_consistency_loss(gt2, ms2, "qb")
    both = spectral_consistency_loss(torch.cat([gt, gt2]), m, "qb")
    assert float(both) == pytest.approx(float(one) / 2, rel=1e-9)
