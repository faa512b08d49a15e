"""The deep baselines (issue #20): every registered model trains on a fixture, the Mamba scan
equals its sequential definition, the wavelet is exact, the registry has no import cycle, and
the shipped baselines fuse through fuse() and `sumdun fuse` like any method."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from sumdun.models import BASELINES, create_model, list_models
from sumdun.models.mamba import linear_scan, selective_scan, selective_scan_reference
from sumdun.models.wavelets import haar_dwt, haar_idwt

from synthetic import scene


def _batch(bands, seed=0, n=2, h=8):
    gt, ms, pan = zip(*(scene(seed=seed + i, bands=bands, h=h, w=h) for i in range(n)))
    f = lambda a: torch.tensor(np.stack(a), dtype=torch.float32) / 2047  # noqa: E731
    return f(ms), f(pan), f(gt)


def _loss(model, ms, pan, gt, text=None):
    if hasattr(model, "training_loss"):
        return model.training_loss(ms, pan, gt, text)
    return (model(ms, pan, text) - gt).abs().mean()


MODELS = sorted(BASELINES) + ["sumdun_tiny"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("bands", [4, 8])
def test_every_model_fuses_learns_and_trains_every_parameter(name, bands):
    """Shape of the fusion; within 10 Adam steps on one fixture batch a gradient reaches every
    parameter (SUM-DUN's zero-initialised residual paths open after the first step), and the
    loss ends lower than it started (fixed seeds)."""
    torch.manual_seed(0)
    extra = {"bands": bands} if name in BASELINES else {}
    model = create_model(name, **extra)
    ms, pan, gt = _batch(bands, h=8)
    model.eval()
    with torch.no_grad():
        out = model(ms, pan)
    assert out.shape == gt.shape and torch.isfinite(out).all()
    model.train()
    text = torch.randn(len(ms), 384) if model.uses_text else None
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses, reached = [], set()
    for _ in range(10):
        torch.manual_seed(1)  # the same diffusion time and noise each step for TMDiff
        opt.zero_grad()
        loss = _loss(model, ms, pan, gt, text)
        loss.backward()
        reached |= {n for n, p in model.named_parameters()
                    if p.grad is not None and p.grad.abs().sum() > 0}
        opt.step()
        losses.append(float(loss.detach()))
    # every parameter trains (the null prompt only when a prompt is dropped: not here)
    dead = {n for n, p in model.named_parameters() if p.requires_grad} - reached - {"null_text"}
    assert not dead, f"no gradient reaches {sorted(dead)}"
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_are_scale_equivariant(name):
    """SUM-DUN's normalisation: k * (ms, pan) fuses to k * the fusion (any bit depth)."""
    torch.manual_seed(0)
    model = create_model(name, bands=4).eval()
    ms, pan, _ = _batch(4, h=8)
    with torch.no_grad():
        a, b = model(ms, pan), model(ms * 31.0, pan * 31.0)
    assert torch.allclose(b, 31.0 * a, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_baseline_refuses_another_band_count():
    model = create_model("pnn", bands=8)
    ms, pan, _ = _batch(4)
    with pytest.raises(ValueError, match="8-band MS, got 4 bands"):
        model(ms, pan)


@pytest.mark.parametrize("length,chunk", [(1, 8), (37, 1), (37, 8), (64, 16), (100, 32),
                                          (100, 256)])
def test_chunked_selective_scan_equals_the_sequential_definition(length, chunk):
    """Outputs and gradients (x, delta, A, B, C, D) of the chunked scan equal the step-by-step
    recurrence, for lengths that are and are not multiples of the chunk."""
    g = torch.Generator().manual_seed(length * 1000 + chunk)
    bsz, d, n = 2, 5, 3
    args = [torch.randn(bsz, length, d, generator=g, dtype=torch.float64),
            torch.rand(bsz, length, d, generator=g, dtype=torch.float64) * 1.5,
            -torch.rand(d, n, generator=g, dtype=torch.float64) * 4 - 0.1,
            torch.randn(bsz, length, n, generator=g, dtype=torch.float64),
            torch.randn(bsz, length, n, generator=g, dtype=torch.float64),
            torch.randn(d, generator=g, dtype=torch.float64)]
    a1 = [t.clone().requires_grad_() for t in args]
    a2 = [t.clone().requires_grad_() for t in args]
    y1 = selective_scan(*a1, chunk=chunk)
    y2 = selective_scan_reference(*a2)
    assert torch.allclose(y1, y2, rtol=1e-10, atol=1e-10)
    w = torch.randn(y1.shape, generator=g, dtype=torch.float64)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    for t1, t2 in zip(a1, a2):  # None: no path (the decay of a one-step sequence)
        g1 = torch.zeros_like(t1) if t1.grad is None else t1.grad
        assert torch.allclose(g1, t2.grad, rtol=1e-9, atol=1e-9)


def test_linear_scan_is_stable_on_long_strongly_decaying_sequences():
    """4096 steps with decays down to exp(-20) per step: the exp(cumsum) shortcut overflows,
    the pairwise products do not; the result is the recurrence's."""
    g = torch.Generator().manual_seed(3)
    a = torch.exp(-20 * torch.rand(1, 4096, 2, generator=g))
    b = torch.randn(1, 4096, 2, generator=g)
    h = linear_scan(a, b, chunk=64)
    ref, state = [], torch.zeros(1, 2)
    for t in range(4096):
        state = a[:, t] * state + b[:, t]
        ref.append(state)
    assert torch.isfinite(h).all()
    assert torch.allclose(h, torch.stack(ref, 1), rtol=1e-5, atol=1e-6)


def test_haar_wavelet_is_orthonormal_and_exact():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    y = haar_dwt(x)
    assert y.shape == (2, 4, 3, 4, 3)
    assert torch.allclose(haar_idwt(y), x, atol=1e-12)
    assert torch.allclose((y ** 2).sum(), (x ** 2).sum())      # energy kept
    const = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    assert torch.allclose(haar_dwt(const)[:, 1:], torch.zeros(1, 3, 1, 2, 2, dtype=torch.float64))


def test_registry_has_no_import_cycle():
    """A method module imports neither the registry nor sumdun.fusion (which import it)."""
    code = ("import sys, sumdun.methods.classical.brovey, sumdun.methods.classical.glp, "
            "sumdun.methods.neural.baselines; print(sorted(m for m in sys.modules if m in "
            "('sumdun.fusion', 'sumdun.methods.registry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_baseline_model_is_listed():
    assert set(BASELINES) <= set(list_models())
    assert set(BASELINES) == {"pnn", "pannet", "fusionnet", "awfln", "wfanet", "panmamba",
                              "fusionmamba", "tmdiff"}
