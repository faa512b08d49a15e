"""Dataset builder and training: disjoint reproducible splits, a tiny run that learns, exact
resume, checkpoint errors."""
import json

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py")

from sumdun.data import build_dataset, split_rows  # noqa: E402
from sumdun.engine.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from sumdun.engine.train import MixedBatches, TrainConfig, fit  # noqa: E402
from sumdun.io import ScenePair  # noqa: E402
from sumdun.models import create_model  # noqa: E402
from sumdun.sensors import get_sensor  # noqa: E402

from synthetic import scene  # noqa: E402


def _pair(seed, bands=8, h=128):
    _, ms, pan = scene(seed=seed, bands=bands, h=h, w=h)
    # make PAN carry detail the MS lacks: the scene's full-resolution band mean
    return ScenePair(ms=np.rint(ms).astype(np.uint16), pan=np.rint(pan).astype(np.uint16),
                     sensor=get_sensor("wv3" if bands == 8 else "qb"), ms_nodata=0, pan_nodata=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    manifest = build_dataset([_pair(1)], out, patch=32, stride=16, fractions=(0.5, 0.25, 0.25))
    return out, manifest


def test_builder_names_and_whole_scenes_to_training(tmp_path):
    """Several scenes of one sensor get their own names; fractions (1, 0, 0) put a small scene
    wholly into training (no val, test or full-resolution files); a 4-band scene of an
    8-band sensor gets no 4-band subset of itself."""
    four = _pair(3, bands=4, h=64)
    four.sensor = get_sensor("wv3")
    m = build_dataset([_pair(2, h=64), four], tmp_path, patch=32, stride=32,
                      fractions=(1.0, 0.0, 0.0), names=["miami", "rotterdam"])
    assert set(m) == {"miami", "miami-4band", "rotterdam"}
    assert sorted(f.name for f in tmp_path.glob("*.h5")) == [
        "miami-4band_train.h5", "miami_train.h5", "rotterdam_train.h5"]
    with h5py.File(tmp_path / "miami_train.h5") as f:
        assert len(f["gt"]) == 4  # all 64 x 64 rows and columns: 2 x 2 patches of 32
    with pytest.raises(ValueError, match="names: 1 for 2 pairs"):
        build_dataset([_pair(2, h=64), four], tmp_path, names=["one"])


def test_split_rows():
    assert split_rows(832, 128) == {"train": (0, 576), "val": (576, 704), "test": (704, 832)}
    with pytest.raises(ValueError, match="cannot hold"):
        split_rows(300, 128)


def test_builder_outputs_disjoint_reproducible(dataset, tmp_path):
    out, manifest = dataset
    assert set(manifest) == {"wv3", "wv3-4band"}
    rows = manifest["wv3"]["rows"]
    assert rows["train"][1] <= rows["val"][0] and rows["val"][1] <= rows["test"][0]
    with h5py.File(out / "wv3_train.h5") as f:
        assert f["gt"].shape[1:] == (8, 32, 32) and f["ms"].shape[1:] == (8, 8, 8)
        assert f["pan"].shape[1:] == (1, 32, 32) and f["lms"].shape[1:] == (8, 32, 32)
        assert f.attrs["sensor"] == "wv3" and f.attrs["split"] == "train"
        train_gt = f["gt"][()]
    with h5py.File(out / "wv3-4band_test.h5") as f:
        assert f["gt"].shape[1] == 4 and f.attrs["band_names"] == "blue,green,red,nir1"
    with h5py.File(out / "wv3_test_fr.h5") as f:
        assert f["ms"].shape[1:] == (8, 8, 8) and f["pan"].shape[1:] == (1, 32, 32)
    # the source rows of every train patch lie inside the train stripe: match them back
    src = _pair(1).ms.astype(np.float32)
    y_max = rows["train"][1]
    for p in train_gt[:5]:
        hits = [(y, x) for y in range(0, 128 - 31, 16) for x in range(0, 128 - 31, 16)
                if np.array_equal(src[:, y:y + 32, x:x + 32], p)]
        assert hits and all(y + 32 <= y_max for y, _ in hits)
    again = build_dataset([_pair(1)], tmp_path, patch=32, stride=16, fractions=(0.5, 0.25, 0.25))
    assert again == manifest
    with h5py.File(out / "wv3_val.h5") as a, h5py.File(tmp_path / "wv3_val.h5") as b:
        np.testing.assert_array_equal(a["ms"][()], b["ms"][()])


def test_builder_drops_nodata_patches(tmp_path):
    p = _pair(2)
    p.ms[:, :40, :40] = 0
    manifest = build_dataset([p], tmp_path, patch=32, stride=16, fractions=(0.5, 0.25, 0.25),
                             subsets=False)
    full = build_dataset([_pair(2)], tmp_path / "b", patch=32, stride=16,
                         fractions=(0.5, 0.25, 0.25), subsets=False)
    assert manifest["wv3"]["patches"]["train"] < full["wv3"]["patches"]["train"]
    with h5py.File(tmp_path / "wv3_train.h5") as f:
        assert (f["gt"][()].min(axis=(1, 2, 3)) > 0).all()


def test_sampler_is_deterministic_and_one_band_count_per_batch():
    s = MixedBatches([10, 7], 3, seed=4)
    a, b = s.plan(2), s.plan(2)
    assert [(d, i.tolist()) for d, i in a] == [(d, i.tolist()) for d, i in b]
    assert sorted(d for d, _ in a) == [0] * 4 + [1] * 3
    assert s.plan(3) != a
    w = MixedBatches([10, 7], 3, seed=4, weights=[1.0, 3.0]).plan(0)
    assert sum(d == 1 for d, _ in w) > sum(d == 0 for d, _ in w)


def _cfg(out, train, val, epochs, **settings):
    return TrainConfig(model="sumdun_tiny", train=train, val=val, out_dir=str(out),
                       batch_size=4, epochs=epochs, lr=3e-3, warmup_steps=2, seed=7,
                       progress=False, **settings)


def test_tiny_training_learns_checkpoints_and_resumes_exactly(dataset, tmp_path):
    out, _ = dataset
    train = [str(out / "wv3_train.h5"), str(out / "wv3-4band_train.h5")]
    val = [str(out / "wv3_val.h5")]
    torch.manual_seed(0)
    full = fit(_cfg(tmp_path / "a", train, val, epochs=4))
    h = full["history"]
    assert h[-1]["train_l1"] < h[0]["train_l1"]
    assert {"wv3/Q2n", "wv3/PSNR", "wv3/SAM", "wv3/ERGAS"} <= set(h[0])
    ck = load_checkpoint(tmp_path / "a" / "best")
    assert ck["meta"]["model_name"] == "sumdun_tiny" and ck["meta"]["sensors"] == ["wv3"]
    assert (tmp_path / "a" / "log.csv").read_text().count("\n") == 5
    # interrupted after 2 epochs, resumed to 4: the same weights as the uninterrupted run
    fit(_cfg(tmp_path / "b", train, val, epochs=4), stop_after=2)
    fit(_cfg(tmp_path / "b", train, val, epochs=4), resume=True)
    a = load_checkpoint(tmp_path / "a" / "last")["weights"]
    b = load_checkpoint(tmp_path / "b" / "last")["weights"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_errors(dataset, tmp_path):
    out, _ = dataset
    fit(_cfg(tmp_path, [str(out / "wv3_train.h5")], [], epochs=1))
    other = create_model("sumdun_tiny", dim=8)
    with pytest.raises(CheckpointError, match="another model configuration.*dim"):
        load_checkpoint(tmp_path / "last", other)
    model = create_model("sumdun_tiny")
    load_checkpoint(tmp_path / "last", model)  # the matching model loads
    (tmp_path / "last" / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="torn or corrupt: model.safetensors does not "
                       "match the sha256"):
        load_checkpoint(tmp_path / "last", model)
    meta = json.loads((tmp_path / "last" / "meta.json").read_text())
    del meta["files"]  # a checkpoint of an older version: no hashes, safetensors' own check
    (tmp_path / "last" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "last", model)
    (tmp_path / "best" / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "best")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_prompt_embeddings_are_used_and_recorded(dataset, tmp_path, monkeypatch):
    """Each training batch carries its own samples' embeddings from the ``.prompts.h5`` file
    (rows matched to the batch's patches), the SPIMs' prompt layers learn from them, and the
    checkpoint records the encoder."""
    from sumdun.models import SUMDUN
    from sumdun.prompts import HashEncoder, StatsDescriber
    from sumdun.prompts.dataset import precompute_prompts

    out, _ = dataset
    src = out / "wv3_train.h5"
    local = tmp_path / "wv3_train.h5"
    local.write_bytes(src.read_bytes())
    side = precompute_prompts(local, StatsDescriber(), HashEncoder(dim=32), progress=False)
    with h5py.File(side) as f:
        stored = torch.from_numpy(f["text_embeds"][()]).float()
    with h5py.File(local) as f:
        ms_all = torch.from_numpy(f["ms"][()]).float() / (2 ** int(f.attrs["bits"]) - 1)
    assert len({tuple(r.tolist()) for r in stored}) > 1  # the samples' prompts differ
    seen = []
    forward = SUMDUN.forward

    def spy(self, ms, pan, text_embeds=None, *a, **k):
        if self.training:
            seen.append((ms.detach().clone(), None if text_embeds is None else
                         text_embeds.detach().clone()))
        return forward(self, ms, pan, text_embeds, *a, **k)

    monkeypatch.setattr(SUMDUN, "forward", spy)
    res = fit(_cfg(tmp_path / "run", [str(local)], [], epochs=1,
                   model_overrides={"prompt_dropout": 0.0}))
    assert seen and all(t is not None for _, t in seen)
    for ms, text in seen:  # each row's embedding is the one stored for that patch
        for m, t in zip(ms, text):
            i = int(((ms_all - m).abs().flatten(1).amax(1)).argmin())
            torch.testing.assert_close(t, stored[i])
    ck = load_checkpoint(res["last"])
    film = [v for k, v in ck["weights"].items() if k.endswith("film.weight")]
    assert film and all(float(w.abs().max()) > 0 for w in film)  # zero-initialised, now learnt
    meta = json.loads((res["last"] / "meta.json").read_text())
    assert meta["text_encoder"]["name"] == "hash" and meta["model_config"]["text_dim"] == 32


def test_prompt_meta_dropout_takes_the_descriptions_without_metadata(dataset, tmp_path,
                                                                     monkeypatch):
    """``prompt_meta_dropout: P`` gives a share P of the samples the embedding of their pair
    described without the file's metadata (``.prompts-nometa.h5``), as bare arrays are
    described at fusion: 0 never, 1 always, 0.5 both; without that file it is refused."""
    from sumdun.errors import UsageError
    from sumdun.models import SUMDUN
    from sumdun.prompts import HashEncoder, StatsDescriber
    from sumdun.prompts.dataset import precompute_prompts

    out, _ = dataset
    local = tmp_path / "wv3_train.h5"
    local.write_bytes((out / "wv3_train.h5").read_bytes())
    with h5py.File(local, "a") as f:  # a product with its acquisition metadata
        f.attrs.update({"gsd_m": 1.2, "sun_elevation": 43.0, "off_nadir": 12.0})
    enc = HashEncoder(dim=32)
    cfg = dict(model_overrides={"prompt_dropout": 0.0})
    precompute_prompts(local, StatsDescriber(), enc, progress=False)
    with pytest.raises(UsageError, match="without metadata"):
        fit(_cfg(tmp_path / "refused", [str(local)], [], epochs=1, prompt_meta_dropout=0.5,
                 **cfg))
    bare = precompute_prompts(local, StatsDescriber(), enc, progress=False, use_meta=False)
    assert bare.name == "wv3_train.prompts-nometa.h5"
    with h5py.File(local.with_name("wv3_train.prompts.h5")) as f, h5py.File(bare) as g:
        with_meta = torch.from_numpy(f["text_embeds"][()]).float()
        without = torch.from_numpy(g["text_embeds"][()]).float()
        assert "sun" in f["prompts"][0].decode() and "sun" not in g["prompts"][0].decode()
    assert not torch.equal(with_meta, without)
    seen = []
    forward = SUMDUN.forward

    def spy(self, ms, pan, text_embeds=None, *a, **k):
        if self.training:
            seen.extend(text_embeds.detach().clone())
        return forward(self, ms, pan, text_embeds, *a, **k)

    monkeypatch.setattr(SUMDUN, "forward", spy)
    kinds = {}
    for p in (0.0, 0.5, 1.0):
        seen.clear()
        fit(_cfg(tmp_path / f"run{p}", [str(local)], [], epochs=1, prompt_meta_dropout=p, **cfg))
        kinds[p] = {("meta" if any(torch.equal(t, r) for r in with_meta) else
                     "bare" if any(torch.equal(t, r) for r in without) else "other")
                    for t in seen}
    assert kinds == {0.0: {"meta"}, 0.5: {"meta", "bare"}, 1.0: {"bare"}}


def test_shipped_example_config_parses():
    from pathlib import Path

    from sumdun.engine.train import load_config

    cfg = load_config(Path(__file__).parents[1] / "configs" / "sumdun_small_dgsamples.yaml")
    assert cfg.model == "sumdun_small" and len(cfg.train) == 4 and cfg.epochs == 25
    assert all(p.endswith("_train.h5") for p in cfg.train)


def test_cli_build_dataset_and_train(tmp_path, capsys):
    import yaml

    from sumdun.cli import main

    assert main(["build-dataset", str(tmp_path / "d"), "--samples", "wv2", "--patch", "64",
                 "--stride", "64", "--no-subsets"]) == 0
    assert "wv2: train" in capsys.readouterr().out
    cfg = {"model": "sumdun_tiny", "train": ["d/wv2_train.h5"], "val": ["d/wv2_val.h5"],
           "out_dir": str(tmp_path / "run"), "epochs": 1, "batch_size": 4, "progress": False}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 0
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
    (tmp_path / "bad.yaml").write_text("modle: sumdun_tiny\n")
    assert main(["train", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "unknown settings ['modle']" in capsys.readouterr().err


def test_ddp_two_gloo_processes_equal_one_process(dataset, tmp_path):
    """torchrun with 2 CPU processes (gloo), global batch 5 split 3 + 2 (and last batches
    smaller than the world size), gives the weights of one process with the same batch."""
    import os
    import socket
    import subprocess
    import sys

    import yaml

    out, _ = dataset
    train = [str(out / "wv3_train.h5"), str(out / "wv3-4band_train.h5")]
    base = dict(model="sumdun_tiny", train=train, val=[], batch_size=5, epochs=2, lr=3e-3,
                warmup_steps=2, seed=3, progress=False, device="cpu",
                model_overrides={"prompt_dropout": 0.5}, balance_weight=0.0)
    fit(TrainConfig(**base, out_dir=str(tmp_path / "one")))
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump({**base, "out_dir": str(tmp_path / "two")}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "sumdun.cli", "train",
         "--config", str(cfg)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "last")["weights"]
    b = load_checkpoint(tmp_path / "two" / "last")["weights"]
    assert a.keys() == b.keys()
    torch.manual_seed(3)
    init = create_model("sumdun_tiny", prompt_dropout=0.5).state_dict()
    update = torch.sqrt(sum(((a[k] - init[k]) ** 2).sum() for k in a))
    diff = torch.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in a))
    # float32 sums in another order, amplified by Adam's normalisation: measured 0.5 % of the
    # training update; other batches or prompt masks on a rank would differ by ~100 %
    assert update > 0.1 and diff < 0.02 * update


def test_init_from_checkpoint_for_fine_tuning(dataset, tmp_path):
    out, _ = dataset
    train = [str(out / "wv3_train.h5")]
    fit(_cfg(tmp_path / "a", train, [], epochs=1))
    # lr 0: training from `init` must leave exactly the initial weights
    cfg = _cfg(tmp_path / "b", train, [], epochs=1)
    cfg.init, cfg.lr = str(tmp_path / "a" / "last"), 0.0
    fit(cfg)
    a = load_checkpoint(tmp_path / "a" / "last")["weights"]
    b = load_checkpoint(tmp_path / "b" / "last")["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    bad = _cfg(tmp_path / "c", train, [], epochs=1)
    bad.init, bad.model_overrides = str(tmp_path / "a" / "last"), {"dim": 6}
    with pytest.raises(CheckpointError, match="do not fit"):
        fit(bad)
    # a fine-tune may change a configuration field the weights do not depend on
    new = _cfg(tmp_path / "d", train, [], epochs=1)
    new.init, new.lr = str(tmp_path / "a" / "last"), 0.0
    new.model_overrides = {"initial_estimate": "bt-h"}
    fit(new)
    d = load_checkpoint(tmp_path / "d" / "last")
    assert d["meta"]["model_config"]["initial_estimate"] == "bt-h"
    assert all(torch.equal(a[k], d["weights"][k]) for k in a)
    # ... but loading it as it is into the other configuration is an error
    with pytest.raises(CheckpointError, match="differs in initial_estimate"):
        load_checkpoint(tmp_path / "d" / "last", create_model("sumdun_tiny"))
    # a checkpoint written before a configuration field existed loads with its default
    meta_path = tmp_path / "a" / "last" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["model_config"]["initial_estimate"]
    meta_path.write_text(json.dumps(meta))
    load_checkpoint(tmp_path / "a" / "last", create_model("sumdun_tiny"))


def test_q2n_loss_matches_the_metric_and_steers_training(dataset, tmp_path):
    from sumdun.engine.train import q2n_loss
    from sumdun.metrics import q2n

    rng = np.random.default_rng(3)
    gt = torch.from_numpy(rng.uniform(0.1, 1.0, (3, 4, 64, 64)))
    out = (gt + 0.05 * torch.from_numpy(rng.standard_normal(gt.shape))).requires_grad_()
    loss = q2n_loss(out, gt)
    per_image = q2n(out.detach(), gt, quantize=False)          # the metric on floats
    assert float(loss.detach()) == pytest.approx(float((1 - per_image).sum()), rel=1e-6)  # float32
    assert float(q2n_loss(gt, gt)) == pytest.approx(0.0, abs=1e-7)
    loss.backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    # wired into training: the same run with and without it ends with different weights
    data, _ = dataset
    train = [str(data / "wv3_train.h5")]
    runs = {}
    for w in (0.0, 0.5):
        torch.manual_seed(0)
        fit(_cfg(tmp_path / str(w), train, [], epochs=1, q2n_weight=w))
        runs[w] = load_checkpoint(tmp_path / str(w) / "last")["weights"]
    assert any(not torch.equal(runs[0.0][k], runs[0.5][k]) for k in runs[0.0])


def test_config_init_folder_is_relative_to_the_config(tmp_path):
    from sumdun.engine.train import load_config

    (tmp_path / "runs" / "a" / "best").mkdir(parents=True)
    (tmp_path / "cfg").mkdir()
    f = tmp_path / "cfg" / "c.yaml"
    f.write_text("init: ../runs/a/best\n")
    assert load_config(f).init == str((tmp_path / "runs" / "a" / "best").resolve())
    f.write_text("init: sumdun_small\n")               # a name: shipped weights
    assert load_config(f).init == "sumdun_small"
    f.write_text("init: ../runs/missing/best\nmodel: sumdun_tiny\n")
    cfg = load_config(f)
    assert cfg.init == str((tmp_path / "runs" / "missing" / "best").resolve())
    with pytest.raises(FileNotFoundError, match="no such checkpoint folder"):
        fit(cfg)


def test_cli_ablate_trains_each_named_variant(dataset, tmp_path, capsys):
    """``sumdun ablate`` trains each requested ablation with its overrides (the checkpoint's
    configuration says so) and prints the paper's table with the right marks."""
    import yaml

    from sumdun.cli import main

    out, _ = dataset
    cfg = {"model": "sumdun_tiny", "train": [str(out / "wv3_train.h5")], "val": [],
           "out_dir": str(tmp_path / "unused"), "epochs": 1, "batch_size": 4,
           "progress": False, "seed": 1}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["ablate", "--config", str(tmp_path / "c.yaml"), "--data",
                 str(out / "wv3_test.h5"), "--out", str(tmp_path / "abl"), "--only",
                 "T4-I,T4-IV,T5-IV", "-q"]) == 0
    table = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| T")}
    assert rows["T4-I"][:3] == ["✗", "✗", "✓"] and rows["T4-IV"][:3] == ["✓", "✓", "✗"]
    assert rows["T5-IV"][0] == "cross-attention"
    assert all(float(r[-1].strip("*")) > 10 for r in rows.values())  # a PSNR in dB
    conf = {tag: load_checkpoint(tmp_path / "abl" / tag / "best")["meta"]["model_config"]
            for tag in ("T4-I", "T4-IV", "T5-IV")}
    assert (conf["T4-I"]["degradation"], conf["T4-I"]["prox"]) == ("2d", "2d")
    assert conf["T4-IV"]["multiscale"] is False and conf["T4-IV"]["prox"] == "3d"
    assert conf["T5-IV"]["spim"] == "cross-attention"


def test_full_resolution_training_needs_no_reference(dataset, tmp_path):
    """With l1_weight 0 and the full-resolution losses, a file with only ms and pan trains, and
    the spectral-consistency loss of the model's output on it goes down; asking for L1 on such
    a file is a clear error, and all-zero weights are refused."""
    from sumdun.engine.fr_losses import spectral_consistency_loss
    from sumdun.engine.train import PatchSet
    from sumdun.errors import UsageError
    from sumdun.io import read_h5, write_h5

    out, _ = dataset
    d = read_h5(out / "wv3_test_fr.h5")
    fr = write_h5(tmp_path / "fr.h5", {"ms": d["ms"], "pan": d["pan"]}, attrs=d["attrs"])
    cfg = dict(l1_weight=0.0, spectral_weight=1.0, spatial_weight=0.1)
    torch.manual_seed(0)
    model = create_model("sumdun_tiny")
    s = PatchSet(fr, needs_gt=False)
    ms, pan, gt, _ = s.batch(torch.arange(len(s)))
    assert gt is None
    with torch.no_grad():
        before = float(spectral_consistency_loss(model.eval()(ms, pan), ms, "wv3"))
    res = fit(_cfg(tmp_path / "run", [str(fr)], [], epochs=3, **cfg))
    load_checkpoint(res["last"], model)
    with torch.no_grad():
        after = float(spectral_consistency_loss(model.eval()(ms, pan), ms, "wv3"))
    assert after < before
    with pytest.raises(ValueError, match="lacks \\['gt'\\]"):
        fit(_cfg(tmp_path / "l1", [str(fr)], [], epochs=1))
    with pytest.raises(UsageError, match="every loss weight is 0"):
        fit(_cfg(tmp_path / "z", [str(fr)], [], epochs=1, l1_weight=0.0))


def test_band_augmentation_trains_through_q2n_and_resumes_exactly(dataset, tmp_path):
    """``band_aug: 1`` trains on band subsets (3 to 8 bands, any order) with the Q2n loss, and
    an interrupted run resumes to the same weights (the draws depend on seed, epoch, step);
    it changes the training (weights differ from a run without it); a share outside [0, 1]
    is refused."""
    out, _ = dataset
    train, val = [str(out / "wv3_train.h5")], [str(out / "wv3_val.h5")]
    settings = dict(band_aug=1.0, radiometric_aug=0.5, q2n_weight=0.2)
    fit(_cfg(tmp_path / "a", train, val, epochs=2, **settings))
    fit(_cfg(tmp_path / "b", train, val, epochs=2, **settings), stop_after=1)
    fit(_cfg(tmp_path / "b", train, val, epochs=2, **settings), resume=True)
    fit(_cfg(tmp_path / "c", train, val, epochs=2, radiometric_aug=0.5, q2n_weight=0.2))
    a, b, c = (load_checkpoint(tmp_path / k / "last")["weights"] for k in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    from sumdun.engine.train import load_config
    from sumdun.errors import UsageError

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"model: sumdun_tiny\ntrain: [{train[0]}]\nband_aug: 1.5\n")
    with pytest.raises(UsageError, match="band_aug is a share of samples from 0 to 1"):
        load_config(bad)


@pytest.mark.parametrize("key", ["mtf_aug", "pan_aug"])
def test_sensor_augmentations_train_resume_exactly_and_change_training(dataset, tmp_path, key):
    """``mtf_aug: 1`` (every MS made again with other MTF gains) and ``pan_aug: 1`` (every PAN
    partly another spectral response): an interrupted run resumes to the same weights, the
    weights differ from a run without it, and a share outside [0, 1] is refused."""
    out, _ = dataset
    train, val = [str(out / "wv3_train.h5")], [str(out / "wv3_val.h5")]
    on = {key: 1.0}
    fit(_cfg(tmp_path / "a", train, val, epochs=2, **on))
    fit(_cfg(tmp_path / "b", train, val, epochs=2, **on), stop_after=1)
    fit(_cfg(tmp_path / "b", train, val, epochs=2, **on), resume=True)
    fit(_cfg(tmp_path / "c", train, val, epochs=2))
    a, b, c = (load_checkpoint(tmp_path / k / "last")["weights"] for k in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    from sumdun.engine.train import load_config
    from sumdun.errors import UsageError

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"model: sumdun_tiny\ntrain: [{train[0]}]\n{key}: -0.5\n")
    with pytest.raises(UsageError, match=f"{key} is a share of samples from 0 to 1"):
        load_config(bad)
