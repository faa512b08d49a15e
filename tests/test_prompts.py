"""Describers, encoders, cache. The MLLM describer talks to a real HTTP server process on
loopback (tests/mllm_stub_server.py) that speaks the OpenAI and Ollama protocols."""
import base64
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sumdun.prompts import (HashEncoder, MLLMDescriber, MLLMError, PromptCache, StatsDescriber,
                            describe_pair, get_describer, get_encoder, prompt_for_pair, render,
                            scene_stats)
from sumdun.prompts.stats import HAZE_LEVELS, SNR_LEVELS

from synthetic import landcover_scene

STUB = Path(__file__).parent / "mllm_stub_server.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port, log = _free_port(), tmp_path / "requests.jsonl"
    proc = subprocess.Popen([sys.executable, str(STUB), str(port), str(log)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield f"http://127.0.0.1:{port}", log
    proc.kill()
    proc.wait()


def _requests(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _pair():
    ms, pan, _ = landcover_scene(3, bands=8, h=32, w=32)
    return ms, pan


# ------------------------------------------------------------------ stats describer
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("bands,sensor", [(4, "qb"), (8, "wv3")])
def test_stats_land_cover_within_10_points(seed, bands, sensor):
    ms, pan, truth = landcover_scene(seed, bands=bands)
    got = scene_stats(ms, pan, sensor).fractions
    for k, v in truth.items():
        assert abs(got[k] - v) < 0.10, (k, got[k], v)


def _flat_pair(dn=(500, 600, 500, 1500), h=32, ratio=4, seed=0, noise=0.0, bands=4):
    """A uniform 4-band scene (vegetation by default) with an optional Gaussian noise."""
    rng = np.random.default_rng(seed)
    ms = np.ones((bands, h, h)) * np.array(dn, float)[:, None, None]
    pan = np.full((1, h * ratio, h * ratio), float(np.mean(dn[:3])))
    return ms + rng.normal(0, noise, ms.shape), pan + rng.normal(0, noise, pan.shape)


def test_stats_sentence_names_sensor_bands_depth_and_gsd():
    ms, pan, truth = landcover_scene(4, bands=4)  # built-up 48 %, the largest share
    st = scene_stats(ms, pan, "qb", meta={"gsd_m": 0.6, "sun_elevation": 25.0,
                                          "off_nadir": 21.0})
    text = render(st)
    assert "QuickBird" in text and "4 bands (blue 482 nm, green 547 nm, red 660 nm and nir " \
        "832 nm)" in text and "11-bit" in text and "0.6 m" in text and "1:4" in text
    share = st.fractions["built-up"]
    assert abs(share - truth["built-up"]) < 0.1 and f"built-up ({round(100 * share)}%)" in text.lower()
    assert "low sun (25 deg elevation)" in text and "21 deg off nadir" in text
    st8 = scene_stats(*landcover_scene(4, bands=8)[:2], "wv3")
    assert "8 bands from 427 to 913 nm" in render(st8)
    assert "floating-point" in render(scene_stats(ms / 2047, pan / 2047, "qb"))
    assert "8-bit" in render(scene_stats(np.round(ms / 8), np.round(pan / 8), None))


def test_stats_wording_varies_but_is_deterministic():
    texts = {StatsDescriber().describe(*landcover_scene(k, bands=4)[:2], "qb") for k in range(8)}
    shapes = {re.sub(r"\d+", "#", t.split(". ")[1]) for t in texts}
    assert len(texts) == 8 and len(shapes) >= 3  # not one template
    ms, pan, _ = landcover_scene(1, bands=4)
    assert StatsDescriber().describe(ms, pan, "qb") == StatsDescriber().describe(ms, pan, "qb")


@pytest.mark.parametrize("kind", ["cloud", "snow", "shadow", "water"])
def test_stats_bright_dark_and_wet_ground(kind):
    """Half the scene vegetation, half cloud (bright, flat, NIR as bright), snow (bright, flat,
    NIR darker), shadow (dark in every band) or water (NIR-dark, smooth): found at ~50 %."""
    ms, pan = _flat_pair()
    half = {"cloud": (1900, 1900, 1900, 1800), "snow": (1900, 1900, 1900, 900),
            "shadow": (60, 70, 60, 60), "water": (520, 460, 300, 110)}[kind]
    ms[:, :, 16:] = np.array(half, float)[:, None, None]
    pan[:, :, 64:] = np.mean(half[:3])
    st = scene_stats(ms, pan, "qb")
    # water is smooth ground: the MS column touching the vegetation edge is not counted
    assert st.fractions[kind] == pytest.approx(0.5, abs=0.07), st.fractions
    assert st.fractions["vegetation"] == pytest.approx(0.5, abs=0.05)


def test_stats_edges_and_structure_scale():
    """A flat PAN has no edges, a fine checkerboard dense ones; a sinusoidal pattern of period
    P peaks in the DoG band of sigma P / 4, described as structures P / 2 across."""
    ms, pan = _flat_pair()
    assert scene_stats(ms, pan, "qb").edge_density == 0.0
    yy, xx = np.mgrid[0:128, 0:128]
    board = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 300.0, 900.0)[None]
    assert "dense edges" in render(scene_stats(ms, board, "qb"))
    for period, sigma in ((16, 4), (32, 8), (64, 16)):
        wave = (1000 + 300 * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period))
        st = scene_stats(ms, wave[None], "qb", meta={"gsd_m": 0.5})
        assert st.structure_px == sigma
        assert f"about {period / 2 * 0.5:.2g} m, {period // 2} px" in render(st)


def test_stats_noise_is_immerkaer_sigma():
    """Gaussian noise of sigma 60 on a smooth ramp: the estimate is within 15 % of 60 and the
    scene reads noisy; with sigma 2 it reads clean."""
    ms, _ = _flat_pair()
    ramp = np.linspace(200, 1800, 128)[None, None, :].repeat(128, 1)
    rng = np.random.default_rng(1)
    noisy = ramp + rng.normal(0, 60.0, ramp.shape)
    st = scene_stats(ms, noisy, "qb")
    lo, hi = np.percentile(noisy, [1, 99])
    assert (hi - lo) / st.snr == pytest.approx(60.0, rel=0.15)
    assert st.snr < SNR_LEVELS[0] and ", noisy" in render(st).replace("looks noisy", ", noisy")
    clean = scene_stats(ms, ramp + rng.normal(0, 2.0, ramp.shape), "qb")
    assert clean.snr > SNR_LEVELS[1] and "clean" in render(clean)


def test_stats_haze_is_the_blue_dark_object():
    """An additive path radiance on the blue band (a haze) lifts its darkest pixels towards its
    median: clear without, hazy with it."""
    ms, pan, _ = landcover_scene(2, bands=4)
    clear = scene_stats(ms, pan, "qb")
    hazy_ms = ms.copy()
    hazy_ms[0] += 1500
    hazy = scene_stats(hazy_ms, pan, "qb")
    assert clear.haze < HAZE_LEVELS[0] < HAZE_LEVELS[1] < hazy.haze
    assert "clear" in render(clear) and "hazy" in render(hazy)


def test_stats_saturation():
    ms, pan, _ = landcover_scene(2, bands=4)
    ms, pan = ms.copy(), pan.copy()
    pan[:, :64] = 2047  # a quarter of the PAN rows (256) at the 11-bit maximum
    st = scene_stats(ms, pan, "qb")
    assert st.saturated == pytest.approx(0.25, abs=0.01)
    assert "25% of the pixels saturated" in render(st)
    assert scene_stats(*landcover_scene(2, bands=4)[:2], "qb").saturated == 0.0


def test_stats_without_land_cover_bands():
    """Three bands without a sensor: no spectral index, the textured share instead."""
    ms, pan, truth = landcover_scene(4, bands=4)
    st = scene_stats(ms[:3], pan, None)
    assert not st.fractions and st.textured == pytest.approx(truth["built-up"], abs=0.1)
    assert "no spectral land-cover index" in render(st)


@pytest.mark.parametrize("name", ["wv2", "wv3"])
def test_stats_on_dgsamples(name):
    pytest.importorskip("rasterio")
    from sumdun.io import load_sample

    p = load_sample(name)
    st = scene_stats(p.ms, p.pan, p.sensor)
    assert sum(st.fractions.values()) == pytest.approx(1.0)
    # suburban Longmont: mostly vegetation/fields, some built-up (roads, roofs)
    assert st.fractions["vegetation"] > 0.3 and st.fractions["built-up"] > 0.05
    text = StatsDescriber().describe(p.ms, p.pan, p.sensor)
    assert p.sensor.name in text and "8 bands" in text


def test_stats_errors():
    with pytest.raises(ValueError, match="4x the size"):
        scene_stats(np.ones((4, 8, 8)), np.ones((1, 30, 30)), "qb")
    with pytest.raises(ValueError, match="no valid"):
        scene_stats(np.zeros((4, 8, 8)), np.zeros((1, 32, 32)), "qb")


# ------------------------------------------------------------------ MLLM describer
@pytest.mark.parametrize("api,path", [("openai", "/v1/chat/completions"), ("ollama", "/api/chat")])
def test_mllm_request_carries_both_images_and_instruction(server, api, path, monkeypatch):
    url, log = server
    monkeypatch.setenv("SUMDUN_MLLM_API_KEY", "secret-123")
    base = url + "/v1" if api == "openai" else url
    d = MLLMDescriber(base_url=base, model="ok", api=api, instruction="Describe it, please.")
    ms, pan = _pair()
    text = d.describe(ms, pan, "wv3")
    assert text.startswith("A suburban scene")
    (req,) = _requests(log)
    assert req["path"] == path and req["auth"] == "Bearer secret-123"
    ms_png, pan_png = d.images(ms, pan, "wv3")
    msg = req["body"]["messages"][0]
    if api == "openai":
        assert msg["content"][0] == {"type": "text", "text": "Describe it, please."}
        urls = [p["image_url"]["url"] for p in msg["content"][1:]]
        assert all(u.startswith("data:image/png;base64,") for u in urls)
        sent = [base64.b64decode(u.split(",", 1)[1]) for u in urls]
    else:
        assert msg["content"] == "Describe it, please."
        sent = [base64.b64decode(b) for b in msg["images"]]
    assert sent == [ms_png, pan_png]  # both images arrive byte for byte
    assert ms_png[:8] == b"\x89PNG\r\n\x1a\n" and len(ms_png) != len(pan_png)
    assert "secret-123" not in repr(d)


def test_mllm_timeout_retries_then_error(server):
    url, log = server
    d = MLLMDescriber(base_url=url + "/v1", model="slow", timeout=0.5, retries=1, backoff=0.01)
    t0 = time.perf_counter()
    with pytest.raises(MLLMError, match="no answer"):
        d.describe(*_pair(), "wv3")
    assert time.perf_counter() - t0 < 2.9  # gave up on its own timeout, not the server's
    time.sleep(0.1)
    assert len(_requests(log)) == 2  # first try + one retry


def test_mllm_timeout_bounds_the_whole_request(server):
    """A server trickling its answer a byte every 0.5 s (each read well inside the timeout)
    is abandoned after ``timeout`` seconds overall."""
    url, _ = server
    d = MLLMDescriber(base_url=url + "/v1", model="trickle", timeout=1.5, retries=0)
    t0 = time.perf_counter()
    with pytest.raises(MLLMError, match="no answer.*within 1.5 s"):
        d.describe(*_pair(), "wv3")
    assert time.perf_counter() - t0 < 3.0


@pytest.mark.parametrize("model, why", [("empty", "empty"), ("long", "too long .300 words"),
                                        ("refuse", "refused"), ("offtopic", "off-topic")])
def test_mllm_unusable_answers_fall_back_to_stats(server, model, why):
    """An answer that is empty, too long, a refusal or off-topic is not used: the stats
    description is, with a warning, and it is recorded (and cached) as coming from stats."""
    url, log = server
    d = MLLMDescriber(base_url=url + "/v1", model=model, retries=2)
    ms, pan = _pair()
    with pytest.warns(RuntimeWarning, match=why):
        text = d.describe(ms, pan, "wv3")
    assert text == StatsDescriber().describe(ms, pan, "wv3")
    assert d.last_source == StatsDescriber().key()
    assert len(_requests(log)) == 1  # a reply that is not a description is not retried


def test_mllm_answer_checks():
    from sumdun.prompts.mllm import answer_problem

    ok = "A dense residential area with red roofs, narrow streets and a few trees; hazy."
    assert answer_problem(ok) is None
    assert "off-topic" in answer_problem("Sure! Here is a poem about spring.")
    assert "empty" in answer_problem("")


def test_mllm_http_errors(server):
    url, log = server
    with pytest.raises(MLLMError, match="HTTP 500"):
        MLLMDescriber(base_url=url + "/v1", model="error500", retries=2, backoff=0.01).describe(
            *_pair(), "wv3")
    assert len(_requests(log)) == 3  # 5xx is retried
    with pytest.raises(MLLMError, match="HTTP 400"):
        MLLMDescriber(base_url=url + "/v1", model="error400", retries=2, backoff=0.01).describe(
            *_pair(), "wv3")
    assert len(_requests(log)) == 4  # 4xx is not


@pytest.mark.parametrize("model,match", [("badjson", "not JSON"), ("nocontent", "malformed")])
def test_mllm_malformed_replies(server, model, match):
    url, _ = server
    with pytest.raises(MLLMError, match=match):
        MLLMDescriber(base_url=url + "/v1", model=model, retries=0).describe(*_pair(), "wv3")


def test_mllm_dead_server_and_fallback():
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    ms, pan = _pair()
    with pytest.raises(MLLMError, match="is the server running"):
        MLLMDescriber(base_url=dead, retries=1, backoff=0.01).describe(ms, pan, "wv3")
    d = MLLMDescriber(base_url=dead, retries=0, fallback="stats")
    with pytest.warns(RuntimeWarning, match="stats describer instead"):
        text = d.describe(ms, pan, "wv3")
    assert text == StatsDescriber().describe(ms, pan, "wv3")
    assert d.last_source == StatsDescriber().key()


def test_cache_prevents_a_second_request(server, tmp_path):
    url, log = server
    cache = PromptCache(tmp_path / "cache")
    d = MLLMDescriber(base_url=url + "/v1", model="ok")
    ms, pan = _pair()
    first = describe_pair(ms, pan, d, "wv3", cache=cache)
    second = describe_pair(ms, pan, d, "wv3", cache=cache)
    assert first.text == second.text and second.cached and not first.cached
    assert len(_requests(log)) == 1
    # another instruction or model is another key: a new request
    d2 = MLLMDescriber(base_url=url + "/v1", model="ok", instruction="Shorter, please.")
    describe_pair(ms, pan, d2, "wv3", cache=cache)
    assert len(_requests(log)) == 2
    # other pixels, another key
    describe_pair(ms + 1, pan, d, "wv3", cache=cache)
    assert len(_requests(log)) == 3


def test_fallback_is_not_cached_under_the_mllm_key(tmp_path):
    cache = PromptCache(tmp_path)
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    d = MLLMDescriber(base_url=dead, retries=0, fallback="stats")
    ms, pan = _pair()
    with pytest.warns(RuntimeWarning):
        p = describe_pair(ms, pan, d, "wv3", cache=cache)
    assert p.source.startswith("stats")
    with pytest.warns(RuntimeWarning):  # asked again: no cached MLLM answer to reuse
        describe_pair(ms, pan, d, "wv3", cache=cache)


# ------------------------------------------------------------------ encoders
SCENES = [
    ["A dense urban area with tall buildings, busy roads and almost no vegetation.",
     "City centre full of high-rise buildings and streets, very little greenery.",
     "Downtown district: packed buildings, road network, sparse trees."],
    ["Farmland with large rectangular crop fields and a few farm houses.",
     "Agricultural land divided into big cultivated fields, scattered farmsteads.",
     "Rural cropland: wide fields of crops with some isolated farm buildings."],
    ["A calm lake surrounded by dense forest, dark water and green trees.",
     "Forest around a still lake; the water is dark and the woods are thick.",
     "Woodland encircling a lake with dark, smooth water."],
    ["A sandy desert with dunes, bright bare ground and no vegetation.",
     "Arid desert landscape of sand dunes, bright soil, no plants.",
     "Barren desert: bright sand dunes and bare terrain."],
]


def test_bge_small_offline_normalised_and_ranks_paraphrases(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    enc = get_encoder("bge-small")
    assert enc.dim == 384 and len(enc.weights_hash) == 64
    texts = [t for group in SCENES for t in group]
    v = enc.encode(texts)
    assert v.shape == (12, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    group = np.repeat(np.arange(4), 3)
    for i in range(12):
        assert group[np.argmax(sim[i])] == group[i], texts[i]
    np.testing.assert_allclose(enc.encode(texts[0]), v[:1], atol=1e-5)  # batch = single


def test_sentence_transformers_minilm_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    enc = get_encoder("minilm")
    assert enc.name == "st:minilm" and enc.dim == 384 and len(enc.weights_hash) == 64
    texts = [t for group in SCENES for t in group]
    v = enc.encode(texts)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    group = np.repeat(np.arange(4), 3)
    assert all(group[np.argmax(sim[i])] == group[i] for i in range(12))
    with pytest.raises(ValueError, match="cannot load the sentence-transformers model"):
        get_encoder("st:/nonexistent/model-folder")


def test_hash_encoder_is_deterministic_and_normalised():
    enc = HashEncoder(dim=32)
    a, b = enc.encode(["vegetation and water", "vegetation and water"]), enc.encode(["roads"])
    np.testing.assert_array_equal(a[0], a[1])
    assert a.shape == (2, 32) and abs(np.linalg.norm(b) - 1) < 1e-6
    assert enc.key() != HashEncoder(dim=64).key()


def test_prompt_embedding_cached(tmp_path):
    calls = []

    class Counting(HashEncoder):
        def encode(self, texts):
            calls.append(texts)
            return super().encode(texts)

    cache = PromptCache(tmp_path)
    ms, pan, _ = landcover_scene(2, bands=4)
    p1 = prompt_for_pair(ms, pan, StatsDescriber(), Counting(), "qb", cache=cache)
    p2 = prompt_for_pair(ms, pan, StatsDescriber(), Counting(), "qb", cache=cache)
    np.testing.assert_array_equal(p1.embedding, p2.embedding)
    assert len(calls) == 1 and p2.cached
    assert len(list((tmp_path / "embeddings").rglob("*.npy"))) == 1
    assert not list(tmp_path.rglob("*.part*"))


def test_get_describer_and_encoder_errors():
    assert isinstance(get_describer("stats"), StatsDescriber)
    with pytest.raises(KeyError, match="available: stats, mllm"):
        get_describer("gpt")
    with pytest.raises(ValueError, match="api must be"):
        MLLMDescriber(api="grpc")


def test_prompts_command_precomputes_and_resumes(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    from sumdun.cli import main
    from sumdun.io import write_h5

    samples = [landcover_scene(s, bands=4, h=16, w=16) for s in range(3)]
    ds = write_h5(tmp_path / "train.h5", {"ms": np.stack([s[0] for s in samples]),
                                          "pan": np.stack([s[1] for s in samples])},
                  attrs={"sensor": "qb"})
    assert main(["prompts", str(ds), "--encoder", "hash"]) == 0
    out = tmp_path / "train.prompts.h5"
    with h5py.File(out, "r") as f:
        texts = [t.decode() if isinstance(t, bytes) else t for t in f["prompts"][()]]
        emb = f["text_embeds"][()]
        assert emb.shape == (3, 64) and f.attrs["encoder"] == "hash"
        assert all("QuickBird" in t and "4 bands" in t for t in texts) and len(set(texts)) == 3
    cache_files = sorted((tmp_path / "train.prompt-cache").rglob("*.*"))
    assert len(cache_files) == 6  # 3 descriptions + 3 embeddings
    mtimes = [p.stat().st_mtime_ns for p in cache_files]
    assert main(["prompts", str(ds), "--encoder", "hash"]) == 0  # resumed: all cache hits
    assert [p.stat().st_mtime_ns for p in cache_files] == mtimes
    assert main(["prompts", str(tmp_path / "none.h5")]) == 2
    assert "dataset not found" in capsys.readouterr().err
