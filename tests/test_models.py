"""SUM-DUN: every registered size and every ablation of the paper, on 4- and 8-band inputs."""
import numpy as np
import pytest
import torch

from sumdun.degrade import interp23tap
from sumdun.models import ABLATIONS, SUMDUN, SUMDUNConfig, create_model, list_models
from sumdun.models.sumdun import GDM

ZERO_INIT = ("film", "route_out", "out.", "unlift")


def _inputs(bands, batch=2, h=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ms = torch.rand(batch, bands, h, h, generator=g)
    pan = torch.rand(batch, 1, 4 * h, 4 * h, generator=g)
    return ms, pan


def _wake_spims(model, seed=0):
    """Give the zero-initialised layers (SPIM outputs, stage outputs, the null prompt) non-zero
    weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(k in name for k in ZERO_INIT) or name == "null_text":
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def _check(model, bands):
    ms, pan = _inputs(bands)
    model.train()
    out = model(ms, pan)
    assert out.shape == (2, bands, 64, 64) and torch.isfinite(out).all()
    (out ** 2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"no gradient reaches {missing}"
    model.zero_grad()


def test_registry():
    assert {"sumdun_tiny", "sumdun_small", "sumdun_base"} <= set(list_models())
    with pytest.raises(KeyError, match="available: .*sumdun_tiny"):
        create_model("sumdun_huge")
    m = create_model("sumdun_tiny", dim=None, spim="channel")  # None keeps the default
    assert m.cfg.dim == 4 and m.cfg.spim == "channel"


@pytest.mark.parametrize("name", ["sumdun_tiny", "sumdun_small", "sumdun_base"])
def test_every_registered_size(name):
    torch.manual_seed(0)
    model = create_model(name)
    _wake_spims(model)
    n_params = sum(p.numel() for p in model.parameters())
    for bands in (4, 8):  # the same weights for both band counts
        _check(model, bands)
    assert sum(p.numel() for p in model.parameters()) == n_params


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_every_ablation(ablation):
    torch.manual_seed(1)
    model = create_model("sumdun_tiny", **ABLATIONS[ablation])
    _wake_spims(model)
    for bands in (4, 8):
        _check(model, bands)


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_batch_independence_and_prompt_effect(ablation):
    torch.manual_seed(2)
    model = create_model("sumdun_tiny", **ABLATIONS[ablation]).eval()
    _wake_spims(model)
    ms, pan = _inputs(8, batch=3, seed=3)
    text = torch.randn(3, model.cfg.text_dim)
    with torch.no_grad():
        both = model(ms, pan, text)
        one = model(ms[1:2], pan[1:2], text[1:2])
        other = model(ms, pan, torch.randn(3, model.cfg.text_dim))
    torch.testing.assert_close(both[1:2], one, atol=1e-5, rtol=1e-5)
    changed = (other - both).abs().max().item()
    if model.cfg.spim == "none":
        assert changed == 0.0  # no SPIM: the prompt cannot matter
    else:
        assert changed > 1e-6


def test_untrained_spims_start_as_identity():
    torch.manual_seed(4)
    model = create_model("sumdun_tiny").eval()
    ms, pan = _inputs(4)
    with torch.no_grad():
        a = model(ms, pan, torch.randn(2, 384))
        b = model(ms, pan, torch.randn(2, 384))
    torch.testing.assert_close(a, b)


def test_gdm_is_a_real_gradient_step():
    """Proximal network off, operators at their MTF initialisation: the data-fidelity term
    ||D X - ms||^2/2 + lambda ||R X - pan||^2/2 decreases over the stages."""
    torch.manual_seed(5)
    model = SUMDUN(SUMDUNConfig(stages=8, prox="off", scales=(1,) * 8, sensor="qb")).eval()
    ms, pan = _inputs(4, seed=6)
    with torch.no_grad():
        out, stages, band_w = model(ms, pan, return_stages=True)
        start = model.gdms[0].fidelity(interp23tap(ms), ms, pan, band_w)  # X_0 = EXP
        values = [start] + [g.fidelity(x, ms, pan, band_w) for g, x in zip(model.gdms, stages)]
    values = torch.stack(values, 1)  # (B, stages + 1)
    assert (values[:, 1:] < values[:, :-1]).all(), values
    assert (values[:, -1] < 0.8 * values[:, 0]).all()


@pytest.mark.parametrize("degradation", ["2d", "3d"])
@pytest.mark.parametrize("kernel", [9, 13])
def test_polyphase_dt_equals_transposed_convolution(degradation, kernel):
    gdm = GDM(SUMDUNConfig(degradation=degradation, kernel=kernel))
    with torch.no_grad():
        gdm.dt_weight.add_(0.01 * torch.randn_like(gdm.dt_weight))
    y = torch.rand(2, 8, 12, 12)
    torch.testing.assert_close(gdm.Dt(y), gdm.dt_reference(y), atol=1e-6, rtol=1e-5)


def test_degradation_operator_is_initialised_from_the_mtf():
    gdm = GDM(SUMDUNConfig(sensor="wv3", kernel=13))
    x = torch.full((1, 8, 32, 32), 0.5)
    torch.testing.assert_close(gdm.D(x), torch.full((1, 8, 8, 8), 0.5))  # unit DC gain
    # decimation phase: a delta at PAN pixel (4*3 + 2, 4*5 + 2) peaks at MS pixel (3, 5)
    d = torch.zeros(1, 1, 32, 32)
    d[0, 0, 14, 22] = 1
    y = gdm.D(d)[0, 0]
    assert tuple(np.unravel_index(int(y.argmax()), y.shape)) == (3, 5)


def test_bad_configuration_and_inputs():
    with pytest.raises(ValueError, match="spim must be one of"):
        SUMDUNConfig(spim="film").validate()
    with pytest.raises(ValueError, match="prox must be"):
        SUMDUNConfig(prox="1d").validate()
    with pytest.raises(ValueError, match="one factor per stage"):
        SUMDUNConfig(stages=3).validate()
    model = create_model("sumdun_tiny")
    ms, pan = _inputs(4)
    with pytest.raises(ValueError, match="text_embeds must be"):
        model(ms, pan, torch.zeros(2, 100))
    with pytest.raises(ValueError, match="must be \\(B, 1, 4h, 4w\\)"):
        model(ms, pan[..., :32])
    with pytest.raises(ValueError, match="multiple of 8"):
        model(torch.rand(1, 4, 5, 5), torch.rand(1, 1, 20, 20))


def test_routing_balance_loss():
    """0 when the experts share the load evenly, E - 1 when one expert takes it all; it
    reaches the router's parameters; nothing to balance without spatial routing."""
    from sumdun.models.layers import SPIM

    torch.manual_seed(0)
    m = SPIM(dim=4, text_dim=6, mode="spatial", experts=3).train()
    x, t = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 6)
    with torch.no_grad():
        m.router.conv.weight.zero_()
        m.router.conv.bias.zero_()
    m(x, t)
    assert abs(float(m.balance.detach())) < 1e-6
    with torch.no_grad():
        m.router.conv.bias.copy_(torch.tensor([50.0, 0.0, 0.0]))
    m(x, t)
    assert float(m.balance.detach()) == pytest.approx(2.0, abs=1e-6)
    with torch.no_grad():
        m.router.conv.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    m(x, t)
    m.balance.backward()
    assert m.router.conv.bias.grad[0] > 0  # pushing expert 0's share down lowers the loss
    model = create_model("sumdun_tiny", spim="channel").train()
    model(torch.rand(1, 4, 8, 8), torch.rand(1, 1, 32, 32))
    assert float(model.routing_balance_loss()) == 0.0


def test_initial_estimate_exp_or_bt_h():
    from sumdun.fusion import fuse
    from synthetic import scene

    _, ms, pan = scene(seed=3, bands=4, h=16, w=16)
    ms_t = torch.from_numpy(ms / 2047.0).float()[None]
    pan_t = torch.from_numpy(pan / 2047.0).float()[None]
    exp_model = create_model("sumdun_tiny")
    torch.testing.assert_close(exp_model.initial(ms_t, pan_t), interp23tap(ms_t))
    bth = create_model("sumdun_tiny", initial_estimate="bt-h")
    ref = torch.from_numpy(fuse(ms / 2047.0, pan / 2047.0, "bt-h")).float()[None]
    top = 2 * ms_t.max()
    torch.testing.assert_close(bth.initial(ms_t, pan_t), ref.clamp(0, float(top)), rtol=0,
                               atol=1e-5)
    assert (bth.initial(ms_t, pan_t) - exp_model.initial(ms_t, pan_t)).abs().max() > 0.01
    with pytest.raises(ValueError, match="initial_estimate must be"):
        create_model("sumdun_tiny", initial_estimate="gsa")
