"""Code mutations the model tests must catch, applied in memory (no file is changed).

``python tests/mutants.py [NAME ...]`` runs the model, training and shipped-weight tests once per
mutation (``SUMDUN_MUTANT=NAME``, applied by ``conftest.py`` before any test) and prints which
ones the suite caught; it exits 1 if a mutation survives. ``tests/README.md`` lists them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F


def _multiscale_ignored():
    from sumdun.models.sumdun import SUMDUNConfig

    SUMDUNConfig.stage_scales = lambda self: list(self.scales)


def _degradation_ignored():
    from sumdun.models import sumdun as m

    init = m.GDM.__init__
    m.GDM.__init__ = lambda self, cfg: init(self, replace(cfg, degradation="2d"))


def _prox_2d_ignored():
    from sumdun.models import sumdun as m

    init = m.SPMN.__init__
    m.SPMN.__init__ = lambda self, cfg, dim, f: init(
        self, replace(cfg, prox="3d") if cfg.prox == "2d" else cfg, dim, f)


def _spectral_conv_along_height():
    from sumdun.models.layers import DepthwiseSpectral

    def forward(self, x):
        w = self.weight.view(1, -1, 3, 1, 1, 1)
        y = x * w[:, :, 1] + self.bias.view(1, -1, 1, 1, 1)
        y = y.clone()
        y[:, :, :, 1:] += x[:, :, :, :-1] * w[:, :, 0]
        y[:, :, :, :-1] += x[:, :, :, 1:] * w[:, :, 2]
        return y

    DepthwiseSpectral.forward = forward


def _spims_random_init():
    from sumdun.models.layers import SPIM

    init = SPIM.__init__

    def new(self, *a, **k):
        init(self, *a, **k)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.split(".")[0] in ("film", "route_out", "out"):
                    p.normal_(0, 0.05)

    SPIM.__init__ = new


def _dt_band_flip_dropped():
    from sumdun.models.sumdun import GDM

    def dt(self, y):
        r, (b, c, h, w) = self.ratio, y.shape
        wt = self.dt_weight[0, 0]
        sub = wt[:, self._dt_idx[:, None, :, None], self._dt_idx[None, :, None, :]]
        sub = sub * self._dt_mask[:, None, :, None] * self._dt_mask[None, :, None, :]
        weight = sub.permute(1, 2, 0, 3, 4).reshape(r * r, 1, self.depth, *sub.shape[-2:])
        u = self._dt_idx.shape[1] // 2
        z = F.conv3d(y.unsqueeze(1), weight, padding=(self.depth // 2, u, u))
        return z.reshape(b, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c, h * r, w * r)

    GDM.Dt = dt


def _gdm_ascends():
    from sumdun.models.sumdun import GDM

    step = GDM.forward
    GDM.forward = lambda self, x, ms, pan, bw: 2 * x - step(self, x, ms, pan, bw)


def _prompt_not_passed_in_training():
    from sumdun.engine.train import PatchSet

    batch = PatchSet.batch
    PatchSet.batch = lambda self, idx: batch(self, idx)[:3] + (None,)


def _text_embeds_ignored():
    from sumdun.models.sumdun import SUMDUN

    text = SUMDUN.text
    SUMDUN.text = lambda self, te, *a, **k: text(self, None, *a, **k)


def _skips_dropped():
    from sumdun.models.sumdun import SUMDUN

    forward = SUMDUN.forward

    def new(self, *a, **k):
        self.skip_from = {}
        return forward(self, *a, **k)

    SUMDUN.forward = new


def _band_weights_uniform():
    from sumdun.models.sumdun import BandWeights

    BandWeights.forward = lambda self, ms: (self.net(ms.unsqueeze(1))[:, 0].mean((-2, -1)) * 0
                                            ).softmax(-1)


def _initial_always_exp():
    from sumdun.degrade import interp23tap
    from sumdun.models.sumdun import SUMDUN

    SUMDUN.initial = torch.no_grad()(lambda self, ms, pan: interp23tap(ms, self.cfg.ratio))


def _prompt_dropout_in_eval():
    from sumdun.models.sumdun import SUMDUN

    text = SUMDUN.text

    def new(self, te, batch, ref, prompt_drop=None):
        was = self.training
        self.training = True
        try:
            return text(self, te, batch, ref, prompt_drop)
        finally:
            self.training = was

    SUMDUN.text = new


def _spatial_router_ignores_prompt():
    from sumdun.models.layers import SPIM

    forward = SPIM.forward

    def new(self, x, t):
        if hasattr(self, "route_text"):
            with torch.no_grad():
                self.route_text.weight.zero_()
                self.route_text.bias.zero_()
        return forward(self, x, t)

    SPIM.forward = new


def _stats_prompt_ignored():
    import sumdun.methods.neural.sumdun as neural

    neural._prompt = lambda *a, **k: None


def _bits_ignored():
    import sumdun.methods.neural.sumdun as neural

    scale = neural.data_scale
    neural.data_scale = lambda ms, pan, sensor, bits=None, data_range=None: scale(
        ms, pan, sensor, None, None)


def _without_input_norm(cls) -> None:
    """``cls.forward`` runs with ``input_norm='none'`` whatever the configuration says."""
    forward = cls.forward

    def plain(self, *args, **kwargs):
        saved, self.cfg.input_norm = self.cfg.input_norm, "none"
        try:
            return forward(self, *args, **kwargs)
        finally:
            self.cfg.input_norm = saved

    cls.forward = plain


def _input_norm_ignored():
    from sumdun.models.sumdun import SUMDUN

    _without_input_norm(SUMDUN)


def _range_from_dtype_ignored():
    import sumdun.fusion as fusion

    fusion.range_from_data = lambda ms, pan: {}


def _scan_carry_dropped():
    import sumdun.models.mamba as mamba

    def no_carry(a, b, chunk=32):
        n = a.shape[1]
        out = [mamba._hillis_steele(a[:, i:i + chunk], b[:, i:i + chunk], 1)[1]
               for i in range(0, n, chunk)]
        return torch.cat(out, 1)

    mamba.linear_scan = no_carry


def _baseline_norm_ignored():
    from sumdun.models._baseline import Baseline

    _without_input_norm(Baseline)


def _haar_bands_swapped():
    import sumdun.models.wavelets as w

    inverse = w.haar_idwt
    w.haar_idwt = lambda y: inverse(y[:, [0, 2, 1, 3]])


def _tmdiff_noise_unseeded():
    import random

    from sumdun.models.tmdiff import TMDiff

    fuse = TMDiff.fuse

    def unseeded(self, *args):
        self.cfg.seed = random.randrange(2**31)  # a new noise draw on every call
        return fuse(self, *args)

    TMDiff.fuse = unseeded


def _start_gate_is_the_mean():
    from sumdun.models.sumdun import StartGate

    StartGate.forward = lambda self, a, b, pan: (a + b) / 2


MUTANTS = {
    "multiscale-ignored": ("multiscale=False runs the U schedule anyway", _multiscale_ignored),
    "degradation-ignored": ("degradation='3d' builds the 2-D operator", _degradation_ignored),
    "prox-2d-ignored": ("prox='2d' builds the 3-D proximal network", _prox_2d_ignored),
    "spectral-along-height": ("the 3-tap 'spectral' conv mixes image rows, not bands",
                              _spectral_conv_along_height),
    "spims-random-init": ("SPIM output layers randomly initialised", _spims_random_init),
    "dt-band-flip-dropped": ("D^T's spectral taps not flipped (not D's adjoint)",
                             _dt_band_flip_dropped),
    "gdm-ascends": ("the gradient step goes uphill", _gdm_ascends),
    "prompt-not-passed-in-training": ("training drops the precomputed embeddings",
                                      _prompt_not_passed_in_training),
    "text-embeds-ignored": ("the model always uses the null prompt", _text_embeds_ignored),
    "skips-dropped": ("the U's skip connections are never added", _skips_dropped),
    "band-weights-uniform": ("R's band weights ignore the image", _band_weights_uniform),
    "initial-always-exp": ("initial_estimate='bt-h' starts from EXP", _initial_always_exp),
    "prompt-dropout-in-eval": ("prompt dropout also applies at inference", _prompt_dropout_in_eval),
    "spatial-router-ignores-prompt": ("spatial routing does not see the prompt",
                                      _spatial_router_ignores_prompt),
    "stats-prompt-ignored": ("fuse(method='sumdun') never embeds the stats prompt",
                             _stats_prompt_ignored),
    "bits-ignored": ("fuse(method='sumdun', bits=/data_range=) keeps the sensor's range",
                     _bits_ignored),
    "input-norm-ignored": ("input_norm='mean' normalises nothing", _input_norm_ignored),
    "range-from-dtype-ignored": ("uint8 and [0, 1] floats get the sensor's range",
                                 _range_from_dtype_ignored),
    "scan-carry-dropped": ("the chunked Mamba scan restarts every chunk from zero",
                           _scan_carry_dropped),
    "baseline-norm-ignored": ("the baselines' input_norm='mean' normalises nothing",
                              _baseline_norm_ignored),
    "haar-bands-swapped": ("the inverse Haar transform swaps LH and HL", _haar_bands_swapped),
    "tmdiff-noise-unseeded": ("TMDiff's sampler draws unseeded noise", _tmdiff_noise_unseeded),
    "start-gate-is-the-mean": ("initial_estimate='bt-h|mtf-glp-fs' never learns its mix",
                               _start_gate_is_the_mean),
}

TEST_FILES = ("tests/test_models.py", "tests/test_train.py", "tests/test_shipped_weights.py",
              "tests/test_baselines.py")


def apply(name: str) -> None:
    if name not in MUTANTS:
        raise KeyError(f"unknown mutant {name!r}; known: {', '.join(MUTANTS)}")
    MUTANTS[name][1]()


def main(names: list[str]) -> int:
    root = Path(__file__).parents[1]
    survived = []
    print("| mutant | what it breaks | caught | first failing test | s |\n|---|---|---|---|---:|")
    for name in names or list(MUTANTS):
        t = time.time()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                               "no:cacheprovider", *TEST_FILES], cwd=root, text=True,
                              capture_output=True, env={**os.environ, "SUMDUN_MUTANT": name})
        failed = [ln[len("FAILED "):].split(" - ")[0] for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
        caught = proc.returncode == 1 and bool(failed)
        if not caught:
            survived.append(name)
        first = failed[0].split("::", 1)[-1] if failed else f"(exit {proc.returncode})"
        print(f"| {name} | {MUTANTS[name][0]} | {'yes' if caught else '**NO**'} | {first} | "
              f"{time.time() - t:.0f} |", flush=True)
    if survived:
        print(f"survived: {', '.join(survived)}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
