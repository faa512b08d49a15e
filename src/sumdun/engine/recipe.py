"""The unified training recipe: one function that trains SUM-DUN on every real ratio-4 scene of
a set of sensors, used both for the shipped ``sumdun_small`` weights (every sensor) and for the
leave-one-sensor-out folds of ``benchmarks/generalization.py`` (every sensor but one), so that
what the benchmark measures on a held-out sensor is the recipe the shipped weights come from.

Data per sensor (built once under ``root/data_<sensor>``, with stats prompts embedded by
bge-small): its dgsamples scene (``wv2``, ``wv3``: train stripes of 128-pixel patches, 8 bands and
the 4-band subset; the val stripes choose the epoch) and its real extra scenes of
``../shared/data`` (``sumdun.io.extra``: every row, 64-pixel patches, train only). Only ratio-4
sensors: the network's degradation operators are ratio 4 (Sentinel-2 and Landsat are ratio 2).

Model: ``sumdun_small`` with ``input_norm: mean``, the starting estimate ``start`` (shipped: the
learned per-pixel mix of BT-H and MTF-GLP-FS, ``'bt-h|mtf-glp-fs'``) and ``consistency``
back-projection steps trained in the loop (shipped: 3). Loss L1 + 0.2 (1 - Q2n); a quarter of the
samples get another product's radiometry (``radiometric_aug``); batches of 8, AdamW at 1e-3 with
50 warm-up steps and a cosine decay, seed 0, for ``ceil(steps / batches per epoch)`` epochs.
"""
from __future__ import annotations

import math
from pathlib import Path

#: sensors with real ratio-4 scenes (dgsamples + ../shared/data)
RECIPE_SENSORS = ("wv2", "wv3")
#: the shipped recipe's defaults
SHIPPED = {"start": "bt-h|mtf-glp-fs", "consistency": 3, "steps": 2400, "meta_dropout": 0.5,
           "detail_gain": 0.5}  # detail_gain: at fusion only (meta.json), not trained


def sensor_data(sensor: str, root: Path) -> tuple[list[str], list[str]]:
    """``(train, val)`` .h5 paths of one sensor's scenes, built under ``root/data_<sensor>`` the
    first time (dgsamples stripes + extra scenes), each with its ``.prompts.h5``."""
    from sumdun.data import build_dataset
    from sumdun.io import load_sample
    from sumdun.io.extra import EXTRA_SCENES, load_extra
    from sumdun.prompts import get_describer, get_encoder
    from sumdun.prompts.dataset import NOMETA_SUFFIX, precompute_prompts

    if sensor not in RECIPE_SENSORS:
        raise ValueError(f"no ratio-4 training scenes for sensor {sensor!r}; the recipe's "
                         f"sensors are {', '.join(RECIPE_SENSORS)}")
    d = Path(root) / f"data_{sensor}"
    if not (d / "manifest.json").exists():
        build_dataset([load_sample(sensor)], d, patch=128, stride=32)
        extras = [n for n, (_, _, s) in EXTRA_SCENES.items() if s == sensor]
        build_dataset([load_extra(n) for n in extras], d / "extra", patch=64, stride=32,
                      fractions=(1.0, 0.0, 0.0), names=extras)
    train = sorted(str(f) for f in list(d.glob("*_train.h5")) +
                   list((d / "extra").glob("*_train.h5")))
    val = sorted(str(f) for f in d.glob("*_val.h5"))
    describer, encoder = get_describer("stats"), get_encoder("bge-small")
    for f in train + val:
        if not Path(f).with_name(Path(f).stem + ".prompts.h5").exists():
            precompute_prompts(f, describer, encoder, progress=False)
    for f in train:  # for prompt_meta_dropout: the same pairs described without metadata
        if not Path(f).with_name(Path(f).stem + NOMETA_SUFFIX).exists():
            precompute_prompts(f, describer, encoder, progress=False, use_meta=False)
    return train, val


def recipe_config(train: list[str], val: list[str], out: Path, steps: int,
                  start: str = SHIPPED["start"], consistency: int = SHIPPED["consistency"],
                  band_aug: float = 0.0, mtf_aug: float = 0.0, pan_aug: float = 0.0,
                  meta_dropout: float = SHIPPED["meta_dropout"], progress: bool = True):
    """The :class:`TrainConfig` of the recipe on these files (epochs from ``steps``)."""
    import h5py

    from sumdun.engine.train import TrainConfig

    batches = 0
    for f in train:
        with h5py.File(f, "r") as h:
            batches += math.ceil(len(h["ms"]) / 8)
    return TrainConfig(
        model="sumdun_small", model_overrides={
            "initial_estimate": start, "input_norm": "mean", "norm_level": 0.15,
            "consistency": consistency},
        train=train, val=val, out_dir=str(out), batch_size=8,
        epochs=max(1, math.ceil(steps / batches)), lr=1e-3, warmup_steps=50, q2n_weight=0.2,
        radiometric_aug=0.25, band_aug=band_aug, mtf_aug=mtf_aug, pan_aug=pan_aug,
        prompt_meta_dropout=meta_dropout, seed=0, progress=progress)


def train_recipe(sensors, root: Path, out: Path, steps: int = SHIPPED["steps"],
                 **options) -> Path:
    """Train the recipe on every scene of ``sensors`` into ``out`` (resumes from ``out/last``;
    returns at once when ``out/done`` exists); returns the best checkpoint folder.
    ``options``: :func:`recipe_config`'s (``start``, ``consistency``, augmentations)."""
    from sumdun.engine.train import fit

    out = Path(out)
    if (out / "best" / "model.safetensors").exists() and (out / "done").exists():
        return out / "best"
    train, val = [], []
    for s in sensors:
        t, v = sensor_data(s, root)
        train += t
        val += v
    fit(recipe_config(train, val, out, steps, **options), resume=(out / "last").exists())
    (out / "done").write_text("")
    return out / "best"
