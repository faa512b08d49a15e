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
    # TMDiff starts at the residual's optimum for pure noise (its output layer is zero): a
    # smaller step keeps its fall monotone
    opt = torch.optim.Adam(model.parameters(), lr=1e-4 if name == "tmdiff" else 1e-3)
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


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from test_train import _pair

    from sumdun.data import build_dataset

    out = tmp_path_factory.mktemp("ds")
    build_dataset([_pair(1)], out, patch=32, stride=16, fractions=(0.5, 0.25, 0.25))
    return out


def _fit(name, out, dataset, epochs=2, **over):
    from sumdun.engine.train import TrainConfig, fit

    cfg = TrainConfig(model=name, model_overrides={"bands": 8, **over},
                      train=[str(dataset / "wv3_train.h5")], val=[str(dataset / "wv3_val.h5")],
                      out_dir=str(out), batch_size=4, epochs=epochs, lr=2e-3, warmup_steps=1,
                      seed=3, progress=False, balance_weight=0.0)
    return fit(cfg)


def test_sumdun_train_trains_a_baseline_and_evaluate_reports_its_budget(dataset, tmp_path):
    """A baseline trains with the SUM-DUN engine; its checkpoint records the budget spent
    (steps, samples, seconds); `evaluate` takes the checkpoint folder, fuses with the baseline
    (not SUM-DUN), labels the row by the run and prints the budget under the table."""
    import json

    from sumdun.evaluation import evaluate
    from sumdun.weights import load_pretrained

    res = _fit("fusionnet", tmp_path / "fusionnet_8b", dataset)
    h = res["history"]
    assert h[-1]["train_l1"] < h[0]["train_l1"]
    meta = json.loads((res["last"] / "meta.json").read_text())
    with h5py_file(dataset / "wv3_train.h5") as f:
        n = len(f["ms"])
    per_epoch = -(-n // 4)
    assert meta["budget"]["steps"] == 2 * per_epoch
    assert meta["budget"]["samples"] == 2 * per_epoch * 4
    assert 0 < meta["budget"]["train_seconds"] < 600
    model, _ = load_pretrained(str(res["last"]))
    assert type(model).__name__ == "FusionNet"
    ev = evaluate([str(res["last"]), "exp"], data=[dataset / "wv3_test.h5"], out=tmp_path / "ev",
                  limit=2, progress=False)
    assert not ev["failures"]
    assert "fusionnet_8b" in ev["rr"]["wv3"] and "exp" in ev["rr"]["wv3"]
    assert ev["rr"]["wv3"]["fusionnet_8b"]["Q2n"] != ev["rr"]["wv3"]["exp"]["Q2n"]
    assert f"{2 * per_epoch} steps of 4" in ev["markdown"]


def h5py_file(path):
    import h5py

    return h5py.File(path, "r")


def test_tmdiff_trains_with_its_own_loss_and_samples_reproducibly(dataset, tmp_path):
    """The engine uses TMDiff's denoising loss (it falls), refuses loss terms that need a
    fusion, and the few-step sampler gives the same fusion twice (seeded noise)."""
    from sumdun.engine.train import TrainConfig, fit
    from sumdun.errors import UsageError

    res = _fit("tmdiff", tmp_path / "tm", dataset, epochs=3)
    h = res["history"]
    assert h[-1]["train_l1"] < h[0]["train_l1"]
    with pytest.raises(UsageError, match="own loss"):
        fit(TrainConfig(model="tmdiff", model_overrides={"bands": 8}, q2n_weight=0.1,
                        train=[str(dataset / "wv3_train.h5")], out_dir=str(tmp_path / "x"),
                        progress=False))
    from sumdun.weights import load_pretrained

    model, _ = load_pretrained(str(res["best"]))
    ms, pan, _ = _batch(8, h=8)
    with torch.no_grad():
        a, b = model(ms, pan), model(ms, pan)
    assert torch.equal(a, b)


def test_expand_methods_presets():
    from sumdun.evaluation.runner import PAPER_METHODS, expand_methods
    from sumdun.fusion import get_method, list_methods

    assert expand_methods(["paper"]) == list(PAPER_METHODS)
    assert expand_methods(["bt-h", "classical"])[0] == "bt-h"
    classical = expand_methods(["classical"])
    assert classical and all(get_method(m).family == "classical" for m in classical)
    assert set(expand_methods(["all"])) == set(list_methods())


def _shipped():
    from sumdun.methods.neural.baselines import shipped_band_counts

    return {n: shipped_band_counts(n) for n in sorted(BASELINES)}


def test_every_baseline_ships_4_and_8_band_weights_and_is_registered():
    from sumdun.fusion import get_method, list_methods

    assert all(bands == [4, 8] for bands in _shipped().values()), _shipped()
    listed = list_methods()
    for name in BASELINES:
        assert name in listed and get_method(name).family == "neural"


def test_sumdun_fuse_cli_with_a_baseline_equals_fuse_and_names_the_weights(tmp_path):
    """`sumdun fuse --method pannet` on a one-tile GeoTIFF pair writes fuse()'s result
    (rounded to the input's uint16), with the weights for the band count in the provenance;
    a 3-band MS is refused before any work with the band counts that have weights."""

    import rasterio

    from sumdun.cli import main
    from sumdun.fusion import fuse

    from synthetic import write_pair

    _, ms, pan = scene(seed=11, bands=4, h=48, w=48)
    ms, pan = np.rint(ms), np.rint(pan)
    ms_p, pan_p = write_pair(tmp_path / "in", ms, pan)
    out = tmp_path / "o.tif"
    assert main(["fuse", str(ms_p), str(pan_p), str(out), "--method", "pannet", "--sensor",
                 "qb", "-q"]) == 0
    ref = np.asarray(fuse(ms[None], pan[None], method="pannet", sensor="qb"))[0]
    with rasterio.open(out) as o:
        got = o.read().astype(np.float64)
        tags = o.tags()
    assert np.abs(got - np.clip(np.rint(ref), 0, 65535)).max() <= 1
    assert tags["SUMDUN_METHOD"] == "pannet" and tags["SUMDUN_WEIGHTS"] == "pannet_4b"
    assert len(tags["SUMDUN_WEIGHTS_SHA256"]) == 64
    three = write_pair(tmp_path / "three", ms[:3], pan)
    rc = main(["fuse", str(three[0]), str(three[1]), str(tmp_path / "3.tif"), "--method",
               "pnn", "-q"])
    assert rc == 2 and not (tmp_path / "3.tif").exists()


def test_method_spec_with_shipped_weights():
    from sumdun.evaluation.runner import method_spec

    assert method_spec("sumdun:sumdun_small") == ("sumdun_small", "sumdun",
                                                  {"weights": "sumdun_small"})
    with pytest.raises(ValueError, match="METHOD:WEIGHTS"):
        method_spec("sumdun:no_such_weights")
    with pytest.raises(ValueError, match="METHOD:WEIGHTS"):
        method_spec("bt-h:sumdun_small")  # a classical method has no weights


def test_own_loss_is_refused_under_ddp(dataset, tmp_path, monkeypatch):
    """TMDiff's training_loss bypasses DistributedDataParallel (no gradient sync): refused
    before any process group is needed."""
    import sumdun.engine.train as train
    from sumdun.errors import UsageError

    monkeypatch.setattr(train, "_distributed", lambda device: (0, 2, device))
    with pytest.raises(UsageError, match="one process"):
        _fit("tmdiff", tmp_path / "ddp", dataset, epochs=1)


def test_baseline_names_agree_across_models_methods_and_registry():
    from sumdun.methods.neural.baselines import BASELINE_METHODS
    from sumdun.methods.registry import BUILTIN

    assert set(BASELINE_METHODS) == set(BASELINES)
    assert all(BUILTIN[n] == "neural.baselines" for n in BASELINES)
