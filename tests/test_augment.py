"""engine/augment.py: another product's radiometry for training samples."""
import numpy as np
import torch

from sumdun.degrade import mtf_filter, mtf_kernels
from sumdun.engine.augment import radiometric_augment


def _sample(b=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    gt = 0.1 + 0.3 * torch.rand(b, c, 32, 32, generator=g, dtype=torch.float64)
    ms = mtf_filter(gt, mtf_kernels("generic", 4, n_bands=c))[..., 2::4, 2::4]
    pan = gt.mean(1, keepdim=True)
    return ms, pan, gt


def test_off_is_the_identity_and_inputs_are_kept():
    ms, pan, gt = _sample()
    keep = [t.clone() for t in (ms, pan, gt)]
    out = radiometric_augment(ms, pan, gt, 0.0, torch.Generator().manual_seed(0))
    assert all(a is b for a, b in zip(out, (ms, pan, gt)))
    radiometric_augment(ms, pan, gt, 1.0, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((ms, pan, gt), keep))


def test_gains_and_offsets_are_shared_by_reference_and_ms_per_band():
    """Without quantisation each band of the MS and of the reference gets the same affine map,
    so the MS is still the reference's degraded version; bands get different maps."""
    ms, pan, gt = _sample()
    ms2, pan2, gt2 = radiometric_augment(ms, pan, gt, 1.0, torch.Generator().manual_seed(1),
                                         p_8bit=0.0)
    slopes = np.zeros((6, 4))
    for b in range(6):
        for k in range(4):
            a_ms = np.polyfit(ms[b, k].flatten().numpy(), ms2[b, k].flatten().numpy(), 1)
            a_gt = np.polyfit(gt[b, k].flatten().numpy(), gt2[b, k].flatten().numpy(), 1)
            np.testing.assert_allclose(a_ms, a_gt, atol=1e-9)
            slopes[b, k] = a_ms[0]
    assert ((slopes >= 0.75) & (slopes <= 1.25)).all() and slopes.std() > 0.05
    assert not torch.allclose(pan2, pan) and (ms2 >= 0).all()


def test_8bit_quantisation_and_probability():
    ms, pan, gt = _sample(b=400, c=3, seed=2)
    ms2, pan2, gt2 = radiometric_augment(ms, pan, gt, 0.5, torch.Generator().manual_seed(3),
                                         p_8bit=1.0)
    changed = ~(ms2 == ms).flatten(1).all(1)
    assert 0.4 < changed.float().mean() < 0.6  # about p of the samples
    for b in torch.nonzero(changed)[:20, 0]:
        top = max(float(t[b].max()) for t in (ms2, pan2, gt2))
        for t in (ms2, pan2, gt2):  # 256 levels up to the sample's maximum
            steps = t[b] / top * 255
            assert torch.allclose(steps, steps.round(), atol=1e-6)
    a = radiometric_augment(ms, pan, gt, 0.5, torch.Generator().manual_seed(3), p_8bit=1.0)
    assert all(torch.equal(x, y) for x, y in zip(a, (ms2, pan2, gt2)))  # seeded


def test_band_augment_subsets_and_orders_ms_and_reference_alike():
    """A random subset (3..C) of the bands in a random order, the same for the MS and the
    reference (the MS stays the reference's degraded version band for band); off, or a batch
    with fewer than 3 bands, is the identity; drawn from the generator alone."""
    from sumdun.engine.augment import band_augment

    ms, pan, gt = _sample(c=8)
    keep = (ms.clone(), gt.clone())
    off = band_augment(ms, gt, 0.0, torch.Generator().manual_seed(0))
    assert off[0] is ms and off[1] is gt
    small = ms[:, :2]
    assert band_augment(small, None, 1.0, torch.Generator().manual_seed(0))[0] is small
    counts, orders = set(), set()
    for seed in range(40):
        ms2, gt2 = band_augment(ms, gt, 1.0, torch.Generator().manual_seed(seed))
        assert 3 <= ms2.shape[1] <= 8 and gt2.shape[1] == ms2.shape[1]
        # each kept band is one of the originals, and the reference's band is the same one
        idx = [int(np.argmin([(ms2[:, j] - ms[:, k]).abs().max() for k in range(8)]))
               for j in range(ms2.shape[1])]
        assert len(set(idx)) == len(idx)
        for j, k in enumerate(idx):
            assert torch.equal(ms2[:, j], ms[:, k]) and torch.equal(gt2[:, j], gt[:, k])
        counts.add(len(idx))
        orders.add(idx != sorted(idx))
    assert len(counts) >= 4 and orders == {True, False}
    again = band_augment(ms, gt, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(again[0], band_augment(ms, gt, 1.0, torch.Generator().manual_seed(7))[0])
    assert torch.equal(ms, keep[0]) and torch.equal(gt, keep[1])
    hits = sum(band_augment(ms, gt, 0.3, torch.Generator().manual_seed(s))[0].shape[1] != 8
               for s in range(200))
    assert 35 <= hits <= 85              # about 30 % of 200 (a full-set draw also counts as 8)


def test_mtf_augment_remakes_the_ms_from_the_reference_with_other_gains():
    """With the gain range pinned to 0.3 the MS is exactly the generic-MTF Wald reduction of
    the reference (filter, gain and decimation phase); gains of 0.2 give a blurrier MS than 0.4;
    p = 0 or no reference leaves the MS alone; the draw repeats with the seed and picks about p
    of the samples."""
    from sumdun.degrade import wald
    from sumdun.engine.augment import mtf_augment

    ms, pan, gt = _sample(b=4, c=3)
    ms = ms * 1.1  # not the generic reduction, so a remade sample is seen
    keep = ms.clone()
    same = mtf_augment(ms, gt, 1.0, torch.Generator().manual_seed(0), gains=(0.3, 0.3))
    want = wald(gt, torch.zeros(4, 1, 128, 128, dtype=gt.dtype), "generic")[0]
    torch.testing.assert_close(same, want)
    torch.testing.assert_close(ms, keep)  # the input is not modified
    assert mtf_augment(ms, gt, 0.0, torch.Generator()) is ms
    assert mtf_augment(ms, None, 1.0, torch.Generator()) is ms

    def detail(x):
        return float((x - x.mean((-2, -1), keepdim=True)).pow(2).mean())
    soft = mtf_augment(ms, gt, 1.0, torch.Generator().manual_seed(0), gains=(0.2, 0.2))
    sharp = mtf_augment(ms, gt, 1.0, torch.Generator().manual_seed(0), gains=(0.4, 0.4))
    assert detail(soft) < 0.9 * detail(sharp)

    big_ms, _, big_gt = _sample(b=64, c=2, seed=1)
    _draws_about_half(mtf_augment, big_ms, big_gt, 3)



def test_pan_augment_mixes_in_another_spectral_response_at_the_pan_mean():
    """A picked PAN becomes (1 - a) PAN + a s, s a positive mix of the reference's bands scaled
    to the PAN's mean: with a pinned to 1 and a reference whose bands are constants 1, 2 and 4,
    s is flat at the PAN mean; with a pinned to 0.5 the PAN's own structure keeps half its
    contrast; p = 0, no reference or another grid leave the PAN alone; seeded, about p."""
    from sumdun.engine.augment import pan_augment

    _, pan, gt = _sample(b=4, c=3)
    keep = pan.clone()
    flat = torch.ones_like(gt) * torch.tensor([1.0, 2.0, 4.0], dtype=gt.dtype).view(1, 3, 1, 1)
    whole = pan_augment(pan, flat, 1.0, torch.Generator().manual_seed(0), mix=(1.0, 1.0))
    torch.testing.assert_close(whole, pan.mean((-2, -1), keepdim=True).expand_as(pan))
    half = pan_augment(pan, flat, 1.0, torch.Generator().manual_seed(0), mix=(0.5, 0.5))
    torch.testing.assert_close(half - half.mean((-2, -1), keepdim=True),
                               0.5 * (pan - pan.mean((-2, -1), keepdim=True)))
    torch.testing.assert_close(pan, keep)
    assert pan_augment(pan, gt, 0.0, torch.Generator()) is pan
    assert pan_augment(pan, None, 1.0, torch.Generator()) is pan
    assert pan_augment(pan, gt[..., :16, :16], 1.0, torch.Generator()) is pan

    _, big_pan, big_gt = _sample(b=64, c=4, seed=2)
    _draws_about_half(pan_augment, big_pan, big_gt, 5)
    # the band weights differ between samples: another response each time
    c = pan_augment(big_pan, big_gt, 1.0, torch.Generator().manual_seed(5), mix=(1.0, 1.0))
    corr = [float(torch.corrcoef(torch.stack([c[i].flatten(), big_pan[i].flatten()]))[0, 1])
            for i in range(8)]
    assert max(corr) - min(corr) > 0.05, corr


def _draws_about_half(augment, x, ref, seed):
    """``augment(x, ref, 0.5, gen)`` repeats with the seed and changes about half the samples
    (20 to 44 of 64); returns the augmented batch."""
    a = augment(x, ref, 0.5, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(a, augment(x, ref, 0.5, torch.Generator().manual_seed(seed)))
    changed = int((a - x).flatten(1).abs().amax(1).gt(1e-9).sum())
    assert 20 <= changed <= 44, changed
    return a
