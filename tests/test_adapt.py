"""Scene adaptation (sumdun.engine.adapt): seeded and reproducible, the installed weights are
never written, an adapted checkpoint round-trips and fuses like the adapted model."""
import hashlib

import numpy as np
import pytest
import torch

from sumdun.engine.adapt import ADAPT_PARAMS, _crops, adapt
from sumdun.fusion import fuse
from sumdun.models import create_model
from sumdun.sensors import get_sensor
from sumdun.weights import available, weights_dir

from synthetic import scene


def _pair(h=32):
    _, ms, pan = scene(seed=11, bands=4, h=h, w=h)
    return ms, pan


@pytest.mark.parametrize("mode", ["rr", "fr", "both"])
def test_adaptation_is_seeded_and_changes_a_copy(mode):
    torch.manual_seed(0)
    model = create_model("sumdun_tiny").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ms, pan = _pair(64)  # patches of 8 MS pixels: the seed picks where they are cut
    kw = dict(steps=3, mode=mode, lr=1e-3, patch=8)
    a, log = adapt(model, ms, pan, get_sensor("qb"), seed=5, **kw)
    b, _ = adapt(model, ms, pan, get_sensor("qb"), seed=5, **kw)
    c, _ = adapt(model, ms, pan, get_sensor("qb"), seed=6, **kw)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)                      # same seed
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)                  # other seed
    assert any(not torch.equal(sa[k], before[k]) for k in sa)              # it learnt
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # a copy
    assert log["steps"] == 3 and log["mode"] == mode and not a.training
    with pytest.raises(ValueError, match="adapt mode must be one of"):
        adapt(model, ms, pan, get_sensor("qb"), mode="zero-shot")


@pytest.mark.parametrize("params", ["physics", "all"])
def test_adapt_params_choose_what_moves(params):
    """physics moves only the degradation modules, the start mix and the band weights (the
    transformer proximal networks and the prompt path stay as trained); all moves the rest too;
    every parameter is trainable again afterwards; each set has its own default rate."""
    torch.manual_seed(0)
    model = create_model("sumdun_tiny").eval()
    ms, pan = _pair(64)
    a, log = adapt(model, ms, pan, get_sensor("qb"), steps=2, mode="both", patch=8,
                   params=params)
    physics = ("gdms.", "start_gate.", "band_weights.")
    before = dict(model.named_parameters())
    moved = {k for k, v in a.named_parameters() if not torch.equal(v, before[k])}
    assert any(k.startswith("gdms.") for k in moved)
    outside = {k for k in moved if not k.startswith(physics)}
    assert (not outside) if params == "physics" else any(k.startswith("spmns.") for k in outside)
    assert all(p.requires_grad for p in a.parameters())
    lr = ADAPT_PARAMS[params][1]
    assert log["params"] == params and log["lr"] == lr
    # Adam's first step moves each parameter by lr * g / (|g| + eps): the largest move is the
    # set's learning rate, so the rate is really the optimiser's
    one, _ = adapt(model, ms, pan, get_sensor("qb"), steps=1, mode="both", patch=8,
                   params=params)
    step = max(float((v - before[k]).abs().max()) for k, v in one.named_parameters())
    assert step == pytest.approx(lr, rel=0.02)
    with pytest.raises(ValueError, match="adapt params must be one of"):
        adapt(model, ms, pan, get_sensor("qb"), params="decoder")


def test_a_patch_that_covers_the_scene_is_taken_once():
    """When one patch is the whole scene, a step sees it once, not ``batch`` copies of it."""
    ms, pan = torch.zeros(1, 4, 8, 8), torch.zeros(1, 1, 32, 32)
    g = torch.Generator().manual_seed(0)
    m, p = _crops(ms, [pan], 32, 4, 4, 4, g)
    assert m.shape == (1, 4, 8, 8) and p.shape == (1, 1, 32, 32)
    m, p = _crops(torch.zeros(1, 4, 16, 16), [torch.zeros(1, 1, 64, 64)], 8, 4, 4, 4, g)
    assert m.shape == (4, 4, 8, 8) and p.shape == (4, 1, 32, 32)


def test_adapt_on_a_finer_grid_sees_the_pair_as_the_fusion_does(monkeypatch):
    """grid=2 (a ratio-2 pair, the PAN already on the ratio-4 network's grid): the reduced pair
    is made from the pair's own PAN samples at ratio 2, and both losses judge the output
    decimated back to the pair's grid, at ratio 2, against the pair's own PAN."""
    import sumdun.engine.adapt as A
    from sumdun.methods.neural.finer_grid import upsample2

    torch.manual_seed(0)
    model = create_model("sumdun_tiny").eval()
    _, ms, pan = scene(seed=3, bands=4, h=32, w=32, ratio=2)       # (4, 32, 32), (1, 64, 64)
    fine = upsample2(torch.as_tensor(pan)[None])                   # (1, 1, 128, 128)
    seen = {}
    wald, spectral, spatial = A.wald, A.spectral_consistency_loss, A.spatial_consistency_loss

    def spy_wald(gt, p, sensor, ratio):
        seen["wald"] = (tuple(p.shape), ratio, torch.equal(p, torch.as_tensor(pan)[None]))
        return wald(gt, p, sensor, ratio)

    def spy_spectral(fused, m, sensor, ratio):
        seen["spectral"] = (fused.shape[-1] // m.shape[-1], ratio)
        return spectral(fused, m, sensor, ratio)

    def spy_spatial(fused, m, p, sensor, ratio):
        seen["spatial"] = (p.shape[-1] // m.shape[-1], ratio)
        return spatial(fused, m, p, sensor, ratio)

    monkeypatch.setattr(A, "wald", spy_wald)
    monkeypatch.setattr(A, "spectral_consistency_loss", spy_spectral)
    monkeypatch.setattr(A, "spatial_consistency_loss", spy_spatial)
    adapt(model, ms, fine, get_sensor("qb"), steps=1, mode="both", patch=8, grid=2)
    assert seen["wald"] == ((1, 1, 64, 64), 2, True)   # the pair's own PAN, at its ratio
    assert seen["spectral"] == (2, 2) and seen["spatial"] == (2, 2)
    with pytest.raises(ValueError, match="grid must be a power of 2"):
        adapt(model, ms, fine, get_sensor("qb"), steps=1, grid=3)


def test_time_budget_stops_early():
    model = create_model("sumdun_tiny")
    ms, pan = _pair()
    _, log = adapt(model, ms, pan, get_sensor("qb"), steps=1000, mode="fr", time_budget=0.5)
    assert log["steps"] < 1000 and log["seconds"] < 5


@pytest.mark.skipif("sumdun_small" not in available(), reason="no shipped weights")
def test_fuse_adapt_saves_a_checkpoint_and_never_writes_the_shipped_weights(tmp_path):
    shipped = weights_dir("sumdun_small") / "model.safetensors"
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()
    ms, pan = _pair()
    plain = fuse(ms, pan, "sumdun", sensor="qb")
    adapted = fuse(ms, pan, "sumdun", sensor="qb", adapt=3, adapt_mode="rr", adapt_seed=1,
                   save_adapted=str(tmp_path / "qb_adapted"))
    again = fuse(ms, pan, "sumdun", sensor="qb", adapt=3, adapt_mode="rr", adapt_seed=1)
    np.testing.assert_array_equal(adapted, again)       # reproducible
    seed0 = fuse(ms, pan, "sumdun", sensor="qb", adapt=3, adapt_mode="rr", adapt_seed=0)
    assert np.abs(seed0 - adapted).max() > 0            # seed 0 is a seed like any other
    assert np.abs(adapted - plain).max() > 0.01         # the adaptation changed the result
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == digest
    # the saved checkpoint fuses like the adapted model (round trip), for another scene too
    reused = fuse(ms, pan, "sumdun", sensor="qb", weights=str(tmp_path / "qb_adapted"))
    np.testing.assert_allclose(reused, adapted, rtol=0, atol=1e-6)
    from sumdun.engine.checkpoint import load_checkpoint

    meta = load_checkpoint(tmp_path / "qb_adapted")["meta"]
    assert meta["adapted"]["steps"] == 3 and meta["adapted"]["sensor"] == "qb"


@pytest.mark.skipif("sumdun_small" not in available(), reason="no shipped weights")
def test_cli_adapts_once_per_scene_and_reuses_the_weights(tmp_path, capsys):
    """sumdun fuse --adapt fine-tunes once on a window of the scene (not per tile), the saved
    weights fuse the same scene the same way through --weights (to the rounding of a few
    pixels), and bad values are usage errors."""
    rasterio = pytest.importorskip("rasterio")
    from sumdun.cli import main
    from synthetic import write_pair

    ms, pan = _pair(128)
    p = write_pair(tmp_path / "in", ms, pan)
    args = ["fuse", *map(str, p)]
    assert main(args + [str(tmp_path / "a.tif"), "--sensor", "qb", "--tile", "256", "--adapt",
                        "3", "--save-adapted", str(tmp_path / "w"), "-q"]) == 0
    assert main(args + [str(tmp_path / "b.tif"), "--sensor", "qb", "--tile", "256",
                        "--weights", str(tmp_path / "w"), "-q"]) == 0
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        va, vb = a.read().astype(int), b.read().astype(int)
    # the same weights on the same tiles; float32 CPU kernels may differ in the last bits
    # between two calls (buffer alignment), which flips the rounding of a few uint16 pixels
    # (seen: 117 of 1048576 by 1 DN); another set of weights would differ everywhere
    assert np.abs(va - vb).max() <= 1 and (va != vb).mean() < 1e-3
    from sumdun.engine.checkpoint import load_checkpoint

    adapted = load_checkpoint(tmp_path / "w")["meta"]["adapted"]
    assert adapted["steps"] == 3  # once, 3 steps
    assert (adapted["mode"], adapted["params"]) == ("both", "physics")  # the defaults
    assert main(args + [str(tmp_path / "c.tif"), "--adapt", "0"]) == 2
    assert "--adapt takes a number of steps" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:  # argparse: exit 2 with the choices named
        main(args + [str(tmp_path / "c.tif"), "--adapt", "2", "--adapt-mode", "x"])
    assert bad.value.code == 2 and "choose from 'rr', 'fr', 'both'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(args + [str(tmp_path / "c.tif"), "--adapt", "2", "--adapt-params", "decoder"])
    assert bad.value.code == 2 and "choose from 'physics', 'all'" in capsys.readouterr().err
    assert main(args + [str(tmp_path / "d.tif"), "--sensor", "qb", "--adapt", "2",
                        "--adapt-params", "all", "--adapt-mode", "rr", "--save-adapted",
                        str(tmp_path / "w_all"), "-q"]) == 0
    adapted = load_checkpoint(tmp_path / "w_all")["meta"]["adapted"]
    assert (adapted["mode"], adapted["params"]) == ("rr", "all")  # the options reach adapt()


@pytest.mark.skipif("sumdun_small" not in available(), reason="no shipped weights")
def test_cli_adapts_a_ratio2_pair_on_the_network_grid(tmp_path):
    """A ratio-2 pair (Landsat, Sentinel-2) is fused on a grid twice as fine; --adapt must adapt
    on that grid too (it once handed the ratio-2 window to the ratio-4 network and failed)."""
    rasterio = pytest.importorskip("rasterio")
    from sumdun.cli import main
    from sumdun.engine.checkpoint import load_checkpoint
    from synthetic import write_pair

    _, ms, pan = scene(seed=5, bands=4, h=48, w=48, ratio=2)
    p = write_pair(tmp_path / "in", ms, pan, ratio=2)
    args = ["fuse", *map(str, p)]
    assert main(args + [str(tmp_path / "plain.tif"), "--sensor", "qb", "--ratio", "2",
                        "-q"]) == 0
    assert main(args + [str(tmp_path / "a.tif"), "--sensor", "qb", "--ratio", "2", "--adapt",
                        "2", "--adapt-mode", "fr", "--save-adapted", str(tmp_path / "w"),
                        "-q"]) == 0
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "plain.tif") as b:
        assert a.shape == b.shape == (96, 96)
        assert np.abs(a.read().astype(int) - b.read().astype(int)).max() > 0  # adapted
    adapted = load_checkpoint(tmp_path / "w")["meta"]["adapted"]
    assert adapted["steps"] == 2 and adapted["window_ms"] == [0, 0, 48, 48]
    assert adapted["grid"] == 2  # adapted as fused: on the network's grid, judged on the pair's
    # the Python path too
    a2 = fuse(ms, pan, "sumdun", sensor="qb", ratio=2, adapt=1, adapt_mode="rr",
              save_adapted=str(tmp_path / "w2"))
    assert a2.shape == (4, 96, 96)
    assert load_checkpoint(tmp_path / "w2")["meta"]["adapted"]["grid"] == 2
