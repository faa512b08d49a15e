"""SUM-DUN: what each part of the network means, so that a change of meaning fails a test.

Every ablation switch changes the computation in the way it names; spectral operations act
along the band axis and spatial ones along space; each SPIM mode routes the way it says and
starts as the identity; D^T is the adjoint of D; any band count works or fails clearly.
``tests/README.md`` lists the code mutations these tests were checked against
(``python tests/mutants.py`` applies each one and runs the suite).
"""
import numpy as np
import pytest
import torch

from sumdun.degrade import interp23tap
from sumdun.models import ABLATIONS, SUMDUN, SUMDUNConfig, create_model, list_models
from sumdun.models.layers import (SPIM, DepthwiseSpatial, DepthwiseSpectral, Patchify,
                                  Unpatchify)
from sumdun.models.sumdun import GDM, SPMN

ZERO_INIT = ("film", "route_out", "out.", "unlift")


def _inputs(bands, batch=2, h=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ms = torch.rand(batch, bands, h, h, generator=g)
    pan = torch.rand(batch, 1, 4 * h, 4 * h, generator=g)
    return ms, pan


def _wake(model, seed=0, keys=ZERO_INIT + ("null_text",)):
    """Give the zero-initialised layers (SPIM outputs, stage outputs, the null prompt) non-zero
    weights, so that every path of the network shows in its output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(k in name for k in keys):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model


def _spectral_identity(module):
    """Every 3-tap band kernel becomes [0, 1, 0] (no mixing across bands)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, DepthwiseSpectral):
                m.weight.zero_()
                m.weight[:, 1] = 1.0
    return module


def _check(model, bands):
    ms, pan = _inputs(bands)
    model.train()
    out = model(ms, pan)
    assert out.shape == (2, bands, 64, 64) and torch.isfinite(out).all()
    (out ** 2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"no gradient reaches {missing}"
    model.zero_grad()


# --- registry and every variant --------------------------------------------------------------

def test_registry():
    assert {"sumdun_tiny", "sumdun_small", "sumdun_base"} <= set(list_models())
    with pytest.raises(KeyError, match="available: .*sumdun_tiny"):
        create_model("sumdun_huge")
    m = create_model("sumdun_tiny", dim=None, spim="channel")  # None keeps the default
    assert m.cfg.dim == 4 and m.cfg.spim == "channel"


@pytest.mark.parametrize("name", ["sumdun_tiny", "sumdun_small", "sumdun_base"])
def test_every_registered_size(name):
    torch.manual_seed(0)
    model = _wake(create_model(name))
    for bands in (4, 8):  # the same weights for both band counts
        _check(model, bands)


@pytest.mark.parametrize("prox", ["3d", "off"])
def test_no_weight_depends_on_the_band_count(prox):
    """Bands are the depth axis: the weights of a 4-band sensor's model load, unchanged, into an
    8-band sensor's model, and no parameter shape changes with ``max_bands``. Only the 2-D
    proximal ablation folds bands into channels (its first layer sees max_bands + 1 inputs)."""
    a = create_model("sumdun_tiny", prox=prox, sensor="qb", max_bands=4)
    b = create_model("sumdun_tiny", prox=prox, sensor="wv3", max_bands=16)
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(a) == shapes(b)
    b.load_state_dict(a.state_dict())
    two_d = {mb: shapes(create_model("sumdun_tiny", prox="2d", max_bands=mb)) for mb in (4, 8)}
    assert two_d[4] != two_d[8]
    assert two_d[8]["spmns.0.lift.proj.conv.weight"][1] == 9 * 4 * 4  # (8 bands + PAN) x f x f


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_every_ablation_trains(ablation):
    torch.manual_seed(1)
    model = _wake(create_model("sumdun_tiny", **ABLATIONS[ablation]))
    for bands in (4, 8):
        _check(model, bands)


@pytest.mark.parametrize("ablation", [a for a in ABLATIONS if ABLATIONS[a] != {}])
def test_every_ablation_changes_the_output(ablation):
    """With the zero-initialised layers woken, a variant computes something else than the full
    model from the same seed (a switch that is ignored builds the same network); the variants
    that name the full model's own settings compute exactly the same."""
    outs = []
    for overrides in ({}, ABLATIONS[ablation]):
        torch.manual_seed(3)
        model = _wake(create_model("sumdun_tiny", **overrides)).eval()
        ms, pan = _inputs(4, seed=5)
        with torch.no_grad():
            outs.append(model(ms, pan, torch.randn(2, 384, generator=torch.Generator()
                                                   .manual_seed(0))))
    default = SUMDUNConfig()  # T4-III and T5-III are the full model's own choices
    same = all(getattr(default, k) == v for k, v in ABLATIONS[ablation].items())
    assert ((outs[0] - outs[1]).abs().max() > 1e-4) != same


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_batch_independence(ablation):
    torch.manual_seed(2)
    model = _wake(create_model("sumdun_tiny", **ABLATIONS[ablation])).eval()
    ms, pan = _inputs(8, batch=3, seed=3)
    text = torch.randn(3, model.cfg.text_dim)
    with torch.no_grad():
        both = model(ms, pan, text)
        one = model(ms[1:2], pan[1:2], text[1:2])
    torch.testing.assert_close(both[1:2], one, atol=1e-5, rtol=1e-5)


# --- multi-scale -----------------------------------------------------------------------------

def _stage_features(model, ms, pan):
    """Shape ``(d, C, H, W)`` of each stage's proximal features."""
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, i, o: shapes.append(tuple(o[1].shape[1:])))
             for m in model.spmns]
    with torch.no_grad():
        model(ms, pan)
    for h in hooks:
        h.remove()
    return shapes


@pytest.mark.parametrize("multiscale", [True, False])
def test_multiscale_switch_sets_each_stage_scale_and_width(multiscale):
    """tiny: scales (4, 8, 4), width 4. Multi-scale stages work at PAN/4, PAN/8, PAN/4 with widths
    4, 8, 4 and the last stage gets a skip from the first; single scale runs every stage at the
    finest scale and width 4 with no skips."""
    model = create_model("sumdun_tiny", multiscale=multiscale).eval()
    ms, pan = _inputs(5, batch=1, h=16)  # PAN 64 x 64
    got = _stage_features(model, ms, pan)
    if multiscale:
        assert got == [(4, 5, 16, 16), (8, 5, 8, 8), (4, 5, 16, 16)]
        assert model.skip_from == {2: 0}
    else:
        assert got == [(4, 5, 16, 16)] * 3
        assert model.skip_from == {}


def test_skip_connection_carries_the_earlier_stage():
    """The U's skip: stage 3's input features change when stage 1's skip projection does."""
    torch.manual_seed(0)
    model = _wake(create_model("sumdun_tiny")).eval()
    ms, pan = _inputs(4)
    with torch.no_grad():
        a = model(ms, pan)
        model.skips["2"].conv.weight.mul_(3.0)
        b = model(ms, pan)
    assert (a - b).abs().max() > 1e-5


# --- degradation operator D, D^T, R -------------------------------------------------------------

def _randomise(gdm, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        gdm.d_weight.add_(0.05 * torch.rand(gdm.d_weight.shape, generator=g))
        gdm.dt_weight.add_(0.05 * torch.rand(gdm.dt_weight.shape, generator=g))
    return gdm


@pytest.mark.parametrize("degradation, reach", [("2d", {3}), ("3d", {2, 3, 4})])
def test_degradation_operator_spectral_extent(degradation, reach):
    """A perturbation of band 3 reaches only band 3 through the 2-D operator, bands 2-4 through
    the 3-D one (3 spectral taps), for D and for D^T; spatially D stays within its kernel."""
    gdm = _randomise(GDM(SUMDUNConfig(degradation=degradation, kernel=9)))
    assert gdm.d_weight.shape[2] == len(reach)
    x = torch.rand(1, 8, 32, 32)
    dx = x.clone()
    dx[0, 3, 16, 16] += 1.0
    with torch.no_grad():
        change = (gdm.D(dx) - gdm.D(x)).abs()[0]
        bands = {int(c) for c in torch.nonzero(change.amax((1, 2)) > 1e-7)}
        assert bands == reach
        rows = torch.nonzero(change.amax((0, 2)) > 1e-7).flatten()
        assert rows.min() >= (16 - 4 - 2) // 4 and rows.max() <= (16 + 4 + 2) // 4
        y = torch.rand(1, 8, 8, 8)
        dy = y.clone()
        dy[0, 3, 4, 4] += 1.0
        change_t = (gdm.Dt(dy) - gdm.Dt(y)).abs()[0].amax((1, 2))
        assert {int(c) for c in torch.nonzero(change_t > 1e-7)} == reach


@pytest.mark.parametrize("degradation", ["2d", "3d"])
@pytest.mark.parametrize("kernel", [9, 13])
def test_dt_is_the_adjoint_of_d(degradation, kernel):
    """With D^T's weights equal to D's, <D x, y> = <x, D^T y> away from the replicate-padded
    border (the adjoint identity; independent of how either operator is computed). With its
    own weights D^T is the adjoint of the D those weights define."""
    gdm = _randomise(GDM(SUMDUNConfig(degradation=degradation, kernel=kernel)).double())
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(2, 8, 48, 48, dtype=torch.float64)
    x[..., 12:36, 12:36] = torch.rand(2, 8, 24, 24, generator=g, dtype=torch.float64)
    y = torch.zeros(2, 8, 12, 12, dtype=torch.float64)
    y[..., 3:9, 3:9] = torch.rand(2, 8, 6, 6, generator=g, dtype=torch.float64)
    with torch.no_grad():
        gdm.dt_weight.copy_(gdm.d_weight)
        lhs = (gdm.D(x) * y).sum()
        rhs = (x * gdm.Dt(y)).sum()
        torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)
        gdm.dt_weight.mul_(1.5)
        assert abs(float((x * gdm.Dt(y)).sum() - lhs)) > 0.1 * abs(float(lhs))


def test_degradation_operator_is_initialised_from_the_mtf():
    gdm = GDM(SUMDUNConfig(sensor="wv3", kernel=13))
    x = torch.full((1, 8, 32, 32), 0.5)
    torch.testing.assert_close(gdm.D(x), torch.full((1, 8, 8, 8), 0.5))  # unit DC gain
    # decimation phase: a delta at PAN pixel (4*3 + 2, 4*5 + 2) peaks at MS pixel (3, 5)
    d = torch.zeros(1, 1, 32, 32)
    d[0, 0, 14, 22] = 1
    y = gdm.D(d)[0, 0]
    assert tuple(np.unravel_index(int(y.argmax()), y.shape)) == (3, 5)
    # the narrower PAN-band MTF of WV-2 (GNyq 0.35 vs QuickBird NIR 0.22) blurs less
    sharp = GDM(SUMDUNConfig(sensor="wv2", kernel=13)).d_weight[0, 0, 1]
    soft = GDM(SUMDUNConfig(sensor="geoeye1", kernel=13)).d_weight[0, 0, 1]
    assert sharp[6, 6] > soft[6, 6]


def test_gdm_is_a_real_gradient_step():
    """Proximal network off, operators at their MTF initialisation: the data-fidelity term
    ||D X - ms||^2/2 + lambda ||R X - pan||^2/2 decreases over the stages, and the step
    equals X - eta * grad of that term computed by autograd (inside the border)."""
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
    gdm = model.gdms[0]
    x = stages[0].clone().double().requires_grad_(True)
    gdm = gdm.double()
    gdm.fidelity(x, ms.double(), pan.double(), band_w.double()).sum().backward()
    with torch.no_grad():
        step = gdm(x, ms.double(), pan.double(), band_w.double())
    m = 8  # D^T is D's adjoint away from the replicate-padded border
    torch.testing.assert_close(step[..., m:-m, m:-m], (x.detach() - gdm.eta * x.grad)[..., m:-m, m:-m],
                               rtol=1e-9, atol=1e-9)


def test_band_weights_follow_the_pan():
    """R's weights are a distribution over the bands, predicted per image: trained to
    reproduce a PAN that is band 2, they put most weight on band 2."""
    from sumdun.models.sumdun import BandWeights

    torch.manual_seed(0)
    bw = BandWeights()
    ms = torch.rand(4, 5, 8, 8)
    w = bw(ms)
    torch.testing.assert_close(w.sum(1), torch.ones(4))
    assert (w >= 0).all()
    opt = torch.optim.Adam(bw.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        ((bw(ms)[..., None, None] * ms).sum(1) - ms[:, 2]).pow(2).mean().backward()
        opt.step()
    assert (bw(ms).argmax(1) == 2).all()


# --- proximal network: spectral along bands, spatial along space --------------------------------

def test_spectral_convolution_acts_along_bands():
    """A perturbation of band 3 at pixel (5, 6) reaches bands 2-4 at that pixel only."""
    torch.manual_seed(0)
    conv = DepthwiseSpectral(4)
    with torch.no_grad():
        conv.weight.copy_(torch.rand(4, 3) + 0.1)
    x = torch.rand(1, 4, 8, 12, 12)
    dx = x.clone()
    dx[0, :, 3, 5, 6] += 1.0
    change = (conv(dx) - conv(x)).abs()[0].amax(0)           # (C, H, W)
    assert {tuple(map(int, i)) for i in torch.nonzero(change > 1e-7)} == \
        {(2, 5, 6), (3, 5, 6), (4, 5, 6)}
    edge = x.clone()
    edge[0, :, 0] += 1.0                                      # first band: zero padding below
    assert {int(i) for i in torch.nonzero((conv(edge) - conv(x)).abs()[0].amax((0, 2, 3)))} == {0, 1}


def test_spatial_convolution_acts_along_space():
    """A perturbation of band 3 at pixel (5, 6) reaches the 3 x 3 neighbourhood of band 3."""
    torch.manual_seed(0)
    conv = DepthwiseSpatial(4)
    x = torch.rand(1, 4, 8, 12, 12)
    dx = x.clone()
    dx[0, :, 3, 5, 6] += 1.0
    change = (conv(dx) - conv(x)).abs()[0].amax(0)
    hit = torch.nonzero(change > 1e-7)
    assert set(hit[:, 0].tolist()) == {3}
    assert hit[:, 1].min() == 4 and hit[:, 1].max() == 6 and hit[:, 2].min() == 5 \
        and hit[:, 2].max() == 7


def test_patchify_maps_each_patch_of_each_band_to_one_feature_position():
    """f = 4: PAN-grid pixel (9, 14) of band 2 lives in feature position (2, 9 // 4, 14 // 4);
    unpatchify puts feature position (2, 1, 2) back on the 4 x 4 block at (4.., 8..)."""
    torch.manual_seed(0)
    p = Patchify(2, 6, 4, spectral=False)
    x = torch.rand(1, 2, 5, 16, 16)
    dx = x.clone()
    dx[0, 1, 2, 9, 14] += 1.0
    hit = torch.nonzero((p(dx) - p(x)).abs()[0].amax(0) > 1e-7)
    assert hit.tolist() == [[2, 2, 3]]
    u = Unpatchify(6, 1, 4)
    z = torch.rand(1, 6, 5, 4, 4)
    dz = z.clone()
    dz[0, :, 2, 1, 2] += 1.0
    hit = torch.nonzero((u(dz) - u(z)).abs()[0, 0] > 1e-7)
    assert set(hit[:, 0].tolist()) == {2}
    assert set(hit[:, 1].tolist()) == {4, 5, 6, 7} and set(hit[:, 2].tolist()) == {8, 9, 10, 11}


def _spmn(prox, seed=0):
    torch.manual_seed(seed)
    cfg = SUMDUNConfig(prox=prox, dim=4, text_hidden=8, stages=1, scales=(4,))
    return _wake(_spectral_identity(SPMN(cfg, 4, 4))).eval()


@pytest.mark.parametrize("prox", ["3d", "2d"])
def test_3d_proximal_network_is_band_equivariant_2d_is_not(prox):
    """The 3-D proximal network shares its weights over the bands: with its 3-tap band kernels
    at identity, permuting the input bands permutes its output. The 2-D one folds each band
    into its own channels, so the same permutation changes the result."""
    spmn = _spmn(prox)
    x, pan = torch.rand(1, 6, 16, 16), torch.rand(1, 1, 16, 16)
    t = torch.randn(1, 8)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        a = spmn(x, pan, t)[0][:, perm]
        b = spmn(x[:, perm], pan, t)[0]
    err = (a - b).abs().max()
    if prox == "3d":
        assert err < 1e-5
    else:
        assert err > 1e-4


@pytest.mark.parametrize("prox", ["3d", "2d"])
def test_proximal_network_has_the_spectral_extent_its_name_says(prox):
    """Through one 3-tap band kernel (the lift's), with attention switched off (a 1 x 1 map
    cannot mix positions), a change of band 1 reaches bands 0-2 in the 3-D network, every band
    in the 2-D one (bands are channels there)."""
    torch.manual_seed(0)
    cfg = SUMDUNConfig(prox=prox, dim=4, text_hidden=8, stages=1, scales=(4,), spim="none")
    spmn = _wake(SPMN(cfg, 4, 4)).eval()
    spmn.blocks = torch.nn.ModuleList()  # lift -> unlift only
    with torch.no_grad():
        for m in spmn.modules():
            if isinstance(m, DepthwiseSpectral):
                m.weight.copy_(torch.rand(m.weight.shape) + 0.1)
    x, pan = torch.rand(1, 6, 16, 16), torch.rand(1, 1, 16, 16)
    dx = x.clone()
    dx[0, 1] += 1.0
    with torch.no_grad():
        change = (spmn(dx, pan, None)[0] - spmn(x, pan, None)[0]).abs()[0].amax((1, 2))
    reached = {int(c) for c in torch.nonzero(change > 1e-6)}
    assert reached == ({0, 1, 2} if prox == "3d" else set(range(6)))


# --- SPIM ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", SPIM.MODES)
def test_untrained_spim_is_the_identity(mode):
    """Freshly built, every SPIM returns its input exactly, whatever the prompt."""
    torch.manual_seed(4)
    spim = SPIM(dim=4, text_dim=6, mode=mode)
    x = torch.randn(2, 4, 3, 8, 8)
    for _ in range(2):
        torch.testing.assert_close(spim(x, torch.randn(2, 6)), x, rtol=0, atol=0)


def test_untrained_spims_leave_the_network_prompt_independent():
    """With the stage outputs woken but the SPIMs as built, the prompt cannot change the fused
    image; waking the SPIMs makes it matter."""
    torch.manual_seed(4)
    model = _wake(create_model("sumdun_tiny"), keys=("unlift",)).eval()
    ms, pan = _inputs(4)
    t1, t2 = torch.randn(2, 384), torch.randn(2, 384)
    with torch.no_grad():
        torch.testing.assert_close(model(ms, pan, t1), model(ms, pan, t2), rtol=0, atol=1e-6)
        _wake(model, seed=1, keys=("film", "route_out"))
        assert (model(ms, pan, t1) - model(ms, pan, t2)).abs().max() > 1e-5


def _woken_spim(mode, seed=0):
    torch.manual_seed(seed)
    return _wake(SPIM(dim=4, text_dim=6, mode=mode), seed, keys=("film", "route_out", "out."))


def test_channel_routing_is_a_per_channel_affine_map_set_by_the_prompt():
    """Channel mode: ``x * (1 + gamma_d(t)) + beta_d(t)`` - a change at one element changes only
    that element, and the scale/shift come from the prompt through the FiLM layer."""
    spim = _woken_spim("channel")
    x, t = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 6)
    dx = x.clone()
    dx[0, 1, 2, 3, 4] += 1.0
    with torch.no_grad():
        hit = torch.nonzero((spim(dx, t) - spim(x, t)).abs() > 1e-7).tolist()
        assert hit == [[0, 1, 2, 3, 4]]
        gamma, beta = spim.film(t).chunk(2, -1)
        torch.testing.assert_close(spim(x, t), x * (1 + gamma[..., None, None, None])
                                   + beta[..., None, None, None])
        assert (spim(x, t) - spim(x, torch.randn(2, 6))).abs().max() > 1e-4
        spim.film.weight.zero_()  # the prompt's path: without it, no prompt effect
        torch.testing.assert_close(spim(x, t), spim(x, torch.randn(2, 6)))


def test_spatial_routing_is_position_dependent_and_prompted():
    """Spatial mode: routing weights differ from position to position (they are computed from
    the features there), a change at one position stays within the experts' 3 x 3 x 3 reach,
    and the prompt reaches the output through the router (``route_text``)."""
    spim = _woken_spim("spatial")
    x, t = torch.randn(1, 4, 5, 8, 8), torch.randn(1, 6)
    with torch.no_grad():
        routes = spim.router(x + spim.route_text(t).view(1, 4, 1, 1, 1)).softmax(1)
        assert routes.flatten(2).std(-1).min() > 1e-3
        dx = x.clone()
        dx[0, 0, 2, 4, 4] += 1.0
        hit = torch.nonzero((spim(dx, t) - spim(x, t)).abs().amax(1)[0] > 1e-7)
        assert hit[:, 0].min() >= 1 and hit[:, 0].max() <= 3
        assert hit[:, 1].min() >= 3 and hit[:, 1].max() <= 5
        assert (spim(x, t) - spim(x, torch.randn(1, 6))).abs().max() > 1e-4
        spim.route_text.weight.zero_()
        spim.route_text.bias.zero_()
        torch.testing.assert_close(spim(x, t), spim(x, torch.randn(1, 6)))


def test_cross_attention_takes_keys_and_values_from_the_prompt():
    spim = _woken_spim("cross-attention")
    x, t = torch.randn(1, 4, 3, 6, 6), torch.randn(1, 6)
    with torch.no_grad():
        assert (spim(x, t) - spim(x, torch.randn(1, 6))).abs().max() > 1e-4
        spim.kv.weight.zero_()  # constant keys and values: the prompt no longer matters
        torch.testing.assert_close(spim(x, t), spim(x, torch.randn(1, 6)))


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_prompt_reaches_the_output_only_through_a_spim(ablation):
    torch.manual_seed(2)
    model = _wake(create_model("sumdun_tiny", **ABLATIONS[ablation])).eval()
    ms, pan = _inputs(8, batch=3, seed=3)
    with torch.no_grad():
        a = model(ms, pan, torch.randn(3, model.cfg.text_dim))
        b = model(ms, pan, torch.randn(3, model.cfg.text_dim))
        null = model(ms, pan, None)
        zero = model(ms, pan, model.null_text.expand(3, -1) if model.uses_text else None)
    changed = (a - b).abs().max().item()
    if model.cfg.spim == "none":
        assert changed == 0.0 and not model.uses_text
    else:
        assert changed > 1e-5
        torch.testing.assert_close(null, zero)  # no prompt = the learned null embedding


def test_prompt_dropout_uses_the_null_embedding_in_training_only():
    torch.manual_seed(0)
    model = _wake(create_model("sumdun_tiny", prompt_dropout=1.0))
    ms, pan = _inputs(4)
    t = torch.randn(2, 384)
    with torch.no_grad():
        model.train()
        dropped = model(ms, pan, t)
        model.eval()
        torch.testing.assert_close(dropped, model(ms, pan, None))
        assert (model(ms, pan, t) - dropped).abs().max() > 1e-5


# --- band counts and bit depths --------------------------------------------------------------

@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_band_counts_1_to_16_work_or_fail_clearly(ablation):
    torch.manual_seed(0)
    model = _wake(create_model("sumdun_tiny", **ABLATIONS[ablation])).eval()
    for c in range(1, 17):
        ms, pan = _inputs(c, batch=1, h=8)
        if model.cfg.prox == "2d" and c > model.cfg.max_bands:
            with pytest.raises(ValueError, match=f"cannot take {c} bands.*max_bands >= {c}"):
                model(ms, pan)
            continue
        with torch.no_grad():
            out = model(ms, pan, torch.randn(1, 384))
        assert out.shape == (1, c, 32, 32) and torch.isfinite(out).all()


def test_bad_configuration_and_inputs():
    with pytest.raises(ValueError, match="spim must be one of"):
        SUMDUNConfig(spim="film").validate()
    with pytest.raises(ValueError, match="prox must be"):
        SUMDUNConfig(prox="1d").validate()
    with pytest.raises(ValueError, match="degradation must be"):
        SUMDUNConfig(degradation="1d").validate()
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


# --- the initial estimate --------------------------------------------------------------------

def test_initial_estimate_exp_or_bt_h():
    """``exp`` starts from the interpolated MS alone (the PAN does not enter); ``bt-h`` injects
    PAN detail, which on a scene whose PAN carries the detail the MS lacks brings the start
    closer to the reference; it is clamped to [0, 2 max(ms)]."""
    from synthetic import scene

    gt, ms, pan = scene(seed=3, bands=4, h=32, w=32)
    ms_t = torch.from_numpy(ms / 2047.0).float()[None]
    pan_t = torch.from_numpy(pan / 2047.0).float()[None]
    exp_model = create_model("sumdun_tiny")
    other_pan = torch.rand_like(pan_t)
    torch.testing.assert_close(exp_model.initial(ms_t, pan_t), exp_model.initial(ms_t, other_pan))
    bth = create_model("sumdun_tiny", initial_estimate="bt-h")
    x_bth, x_exp = bth.initial(ms_t, pan_t), exp_model.initial(ms_t, pan_t)
    assert (bth.initial(ms_t, other_pan) - x_bth).abs().max() > 0.01
    rmse = lambda x: float(np.sqrt(((x[0].double().numpy() * 2047 - gt) ** 2).mean()))  # noqa: E731
    assert rmse(x_bth) < 0.7 * rmse(x_exp)
    assert float(x_bth.min()) >= 0 and float(x_bth.max()) <= 2 * float(ms_t.max()) + 1e-6
    with pytest.raises(ValueError, match="initial_estimate must be"):
        create_model("sumdun_tiny", initial_estimate="gsa")


def test_initial_estimate_mtf_glp_fs_and_the_mean_of_two_starts():
    """``mtf-glp-fs`` is that classical fusion with the generic MTF gains (the model is not
    told the sensor); ``bt-h+mtf-glp-fs`` the mean of the two starts, clamped."""
    from synthetic import scene

    from sumdun.fusion import fuse

    _, ms, pan = scene(seed=4, bands=4, h=32, w=32)
    ms_t = torch.from_numpy(ms / 2047.0)[None]
    pan_t = torch.from_numpy(pan / 2047.0)[None]
    starts = {k: create_model("sumdun_tiny", initial_estimate=k).double().initial(ms_t, pan_t)
              for k in ("bt-h", "mtf-glp-fs", "bt-h+mtf-glp-fs")}
    glp = fuse(ms_t, pan_t, "mtf-glp-fs", sensor="generic")
    top = 2 * float(ms_t.max())
    torch.testing.assert_close(starts["mtf-glp-fs"], glp.clamp(0, top))
    assert (starts["mtf-glp-fs"] - starts["bt-h"]).abs().max() > 1e-3
    mean = (fuse(ms_t, pan_t, "bt-h") + glp) / 2
    torch.testing.assert_close(starts["bt-h+mtf-glp-fs"], mean.clamp(0, top))


def test_learned_start_gate_begins_at_the_mean_learns_and_stays_between_the_starts():
    """``bt-h|mtf-glp-fs``: untrained it is the mean of the two (clamped) starts; its
    parameters get gradients from the fused output; trained or not, each pixel lies between
    the two starts."""
    from synthetic import scene

    _, ms, pan = scene(seed=4, bands=4, h=32, w=32)
    ms_t = torch.from_numpy(ms / 2047.0).float()[None]
    pan_t = torch.from_numpy(pan / 2047.0).float()[None]
    gated = create_model("sumdun_tiny", initial_estimate="bt-h|mtf-glp-fs")
    a = create_model("sumdun_tiny", initial_estimate="bt-h").initial(ms_t, pan_t)
    b = create_model("sumdun_tiny", initial_estimate="mtf-glp-fs").initial(ms_t, pan_t)
    torch.testing.assert_close(gated.initial(ms_t, pan_t), (a + b) / 2)
    gated(ms_t, pan_t).square().mean().backward()
    last = gated.start_gate.net[2]                       # (the first layer's follow once
    assert last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0  # it moves)
    torch.nn.init.normal_(gated.start_gate.net[2].weight, std=1.0)
    x = gated.initial(ms_t, pan_t).detach()
    assert (x >= torch.minimum(a, b) - 1e-6).all() and (x <= torch.maximum(a, b) + 1e-6).all()
    assert (x - (a + b) / 2).abs().max() > 1e-3          # no longer the mean


# --- radiometric invariance ------------------------------------------------------------------

@pytest.mark.parametrize("k", [255 / 2047, 32.0, 1 / 2047, 65535 / 2047])
def test_input_norm_mean_makes_the_fusion_scale_equivariant(k):
    """input_norm='mean': (k ms, k pan) fuses to k times the fusion, whatever k (another bit
    depth, reflectance); without it the (woken, non-linear) network is not equivariant."""
    ms, pan = _inputs(4, seed=3)
    text = torch.randn(2, 384, generator=torch.Generator().manual_seed(1))
    for norm in ("mean", "none"):
        torch.manual_seed(0)
        model = _wake(create_model("sumdun_tiny", input_norm=norm, initial_estimate="bt-h"))
        model.eval()
        with torch.no_grad():
            ref, scaled = model(ms, pan, text), model(k * ms, k * pan, text) / k
        gap = float((ref - scaled).abs().max() / ref.abs().max())
        if norm == "mean":
            assert gap < 2e-5, gap
        else:
            assert gap > 1e-3, gap  # the test can tell: the plain network depends on the scale


def test_input_norm_scales_by_the_ms_mean_of_each_pair():
    """Each pair of a batch is normalised by its own MS mean (not the batch's): a pair fuses
    alike alone and next to a pair 50 times brighter."""
    torch.manual_seed(0)
    model = _wake(create_model("sumdun_tiny", input_norm="mean")).eval()
    ms, pan = _inputs(4, batch=1, seed=4)
    with torch.no_grad():
        alone = model(ms, pan)
        both = model(torch.cat([ms, 50 * ms.flip(-1)]), torch.cat([pan, 50 * pan.flip(-1)]))
    torch.testing.assert_close(both[:1], alone, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="input_norm must be 'none' or 'mean'"):
        create_model("sumdun_tiny", input_norm="max")


# --- consistency projection ------------------------------------------------------------------

def _generic_degrade(x):
    """The toolbox's Wald reduction with the generic gain 0.3, written from its parts."""
    from sumdun.degrade import decimate, mtf_filter
    from sumdun.kernels import mtf_kernels

    k = torch.from_numpy(mtf_kernels("generic", 4, n_bands=x.shape[1])).to(x.dtype)
    return decimate(mtf_filter(x, k), 4)


def test_consistency_leaves_a_consistent_image_alone_and_pulls_others_to_the_ms():
    """``consistency``: an image whose generic-MTF reduction already is the MS comes back
    unchanged (so the filter, its gain and the decimation phase are the Wald reduction's);
    the network's output reduces to the MS more closely with each step; 0 steps change
    nothing."""
    torch.manual_seed(0)
    model = _wake(create_model("sumdun_tiny", consistency=2)).double().eval()
    g = torch.Generator().manual_seed(5)
    x = torch.rand(2, 4, 64, 64, generator=g, dtype=torch.float64)
    torch.testing.assert_close(model.project(x, _generic_degrade(x)), x, rtol=0, atol=1e-9)
    from synthetic import scene

    _, ms, pan = scene(seed=6, bands=4, h=32, w=32)
    ms, pan = torch.from_numpy(ms / 2047.0)[None], torch.from_numpy(pan / 2047.0)[None]
    gaps = []
    for steps in (0, 1, 3):
        model.cfg.consistency = steps
        with torch.no_grad():
            gaps.append(float((_generic_degrade(model(ms, pan)) - ms).abs().mean()))
    assert gaps[1] < 0.2 * gaps[0] and gaps[2] < 0.8 * gaps[1], gaps
    model.cfg.consistency = 0
    with torch.no_grad():
        plain = model(ms, pan)
        torch.testing.assert_close(model.project(plain, ms), plain)  # 0 steps: the identity
    with pytest.raises(ValueError, match="consistency must be a whole number"):
        create_model("sumdun_tiny", consistency=-1)


def test_consistency_trains_and_keeps_the_scale_equivariance():
    """The projection is differentiable (every parameter still gets a gradient through it) and
    commutes with the input scaling of ``input_norm='mean'``."""
    torch.manual_seed(0)
    model = _wake(create_model("sumdun_tiny", consistency=3, input_norm="mean",
                               initial_estimate="bt-h"))
    _check(model, 4)
    model.eval()
    ms, pan = _inputs(4, seed=3)
    with torch.no_grad():
        ref, scaled = model(ms, pan), model(32 * ms, 32 * pan) / 32
    assert float((ref - scaled).abs().max() / ref.abs().max()) < 2e-5
