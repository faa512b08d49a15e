"""The unified training recipe (``sumdun.engine.recipe``): the leave-one-sensor-out folds of
``benchmarks/generalization.py`` and the shipped weights' script train the same recipe, on every
sensor but the held-out one and on every sensor; the shipped weights carry its settings."""
import importlib.util
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from sumdun.engine import recipe
from sumdun.engine.recipe import RECIPE_SENSORS, SHIPPED, recipe_config, sensor_data

ROOT = Path(__file__).resolve().parents[1]


def _calls(monkeypatch):
    calls = []
    monkeypatch.setattr(recipe, "train_recipe",
                        lambda sensors, root, out, steps, **kw: calls.append(
                            (list(sensors), Path(root), Path(out), steps, kw)) or Path(out))
    return calls


def test_a_fold_is_the_recipe_on_every_other_sensor(monkeypatch, tmp_path):
    calls = _calls(monkeypatch)
    spec = importlib.util.spec_from_file_location("gen", ROOT / "benchmarks/generalization.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for held in RECIPE_SENSORS:
        gen.train_fold(held, tmp_path, 800, start=SHIPPED["start"],
                       consistency=SHIPPED["consistency"], meta_dropout=SHIPPED["meta_dropout"])
    for held, (sensors, root, out, steps, kw) in zip(RECIPE_SENSORS, calls):
        assert sensors == [s for s in RECIPE_SENSORS if s != held] and held not in sensors
        assert root == tmp_path and steps == 800
        assert out == tmp_path / f"without_{held}_bt-h-gated-mtf-glp-fs_consistency3_nometa0.5"
        assert kw["start"] == SHIPPED["start"] and kw["consistency"] == SHIPPED["consistency"]
        assert not kw["band_aug"] and not kw["mtf_aug"] and not kw["pan_aug"]
        assert kw["meta_dropout"] == SHIPPED["meta_dropout"]


def test_the_shipped_script_trains_the_recipe_on_every_sensor(monkeypatch, tmp_path):
    calls = _calls(monkeypatch)
    monkeypatch.setattr("sumdun.io.extra.shared_data_root", lambda: tmp_path)
    monkeypatch.setattr(sys, "argv", ["train_unified.py", "--data", str(tmp_path / "d"),
                                      "--out", str(tmp_path / "o")])
    runpy.run_path(str(ROOT / "scripts/train_unified.py"), run_name="__main__")
    (sensors, root, out, steps, kw), = calls
    assert sensors == list(RECIPE_SENSORS) and steps == SHIPPED["steps"] and not kw
    assert root == tmp_path / "d" and out == tmp_path / "o"


def test_recipe_config_budget_and_defaults(tmp_path):
    h5py = pytest.importorskip("h5py")
    files = []
    for name, n in (("a", 20), ("b", 5)):  # ceil(20 / 8) + ceil(5 / 8) = 4 batches an epoch
        with h5py.File(tmp_path / f"{name}.h5", "w") as h:
            h["ms"] = np.zeros((n, 4, 2, 2), np.float32)
        files.append(str(tmp_path / f"{name}.h5"))
    cfg = recipe_config(files, [], tmp_path / "out", steps=10)
    assert cfg.epochs == 3 and cfg.batch_size == 8  # whole epochs covering the 10 batches
    assert recipe_config(files, [], tmp_path, steps=1).epochs == 1
    o = cfg.model_overrides
    assert o["initial_estimate"] == "bt-h|mtf-glp-fs" and o["consistency"] == 3
    assert o["input_norm"] == "mean" and cfg.q2n_weight == 0.2 and cfg.radiometric_aug == 0.25
    assert cfg.prompt_meta_dropout == 0.5
    cfg = recipe_config(files, [], tmp_path, 10, start="bt-h", consistency=0, band_aug=0.5)
    assert cfg.model_overrides["initial_estimate"] == "bt-h" and cfg.band_aug == 0.5
    assert cfg.model_overrides["consistency"] == 0


def test_a_sensor_without_ratio_4_scenes_is_refused(tmp_path):
    with pytest.raises(ValueError, match="wv2, wv3"):
        sensor_data("s2", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing built


def test_the_shipped_weights_carry_the_recipe():
    meta = json.loads((ROOT / "src/sumdun/weights/sumdun_small/meta.json").read_text())
    cfg = meta["model_config"]
    assert cfg["initial_estimate"] == SHIPPED["start"]
    assert cfg["consistency"] == SHIPPED["consistency"]
    assert cfg["detail_gain"] == SHIPPED["detail_gain"]
    data = json.dumps(meta["provenance"]).lower()
    for source in ("dgsamples", "pairmax", "spacenet", "cc by-sa 4.0"):
        assert source in data, source
