"""Do prompts steer SUM-DUN? Held-out patches fused with each patch's own prompt (described
with the file's metadata: GSD, sun elevation, off-nadir angle), the same description without
the metadata (what bare arrays get at fusion), a shuffled prompt (another patch's, same set), a
generic sentence and no prompt (the learned null embedding), per set, with the spread; and how
diverse the training prompts are.

Held out: the test stripes of the dgsamples scenes (never trained on; reduced resolution,
reference = the scene's MS). The extra scenes of ../shared/data are in the shipped weights'
training data, so they are not used here.

Data: sumdun build-dataset data/dgsamples --samples wv2,wv3 (and sumdun prompts on the train files
for the diversity numbers; scripts/train_shipped.sh does both)
Run:  python benchmarks/prompt_effect.py [--data data/dgsamples] [--weights FOLDER] [--limit N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sumdun.degrade import wald
from sumdun.fusion import fuse
from sumdun.metrics import psnr, q2n
from sumdun.prompts import StatsDescriber, get_encoder, prompt_meta

GENERIC = "A satellite image."
CONDITIONS = ("own", "own without metadata", "shuffled", "generic", "none")


def held_out_sets(data: Path, limit: int | None):
    """``{set name: (sensor, [(gt, ms, pan)], meta)}``."""
    from sumdun.io import read_h5

    sets = {}
    for name in ("wv3", "wv3-4band", "wv2", "wv2-4band"):
        f = data / f"{name}_test.h5"
        if f.exists():
            d = read_h5(f)
            n = len(d["gt"]) if limit is None else min(limit, len(d["gt"]))
            sets[f"dgsamples {name} (test stripe)"] = (
                name.split("-")[0], [(d["gt"][i], d["ms"][i], d["pan"][i]) for i in range(n)],
                prompt_meta(d["attrs"]))
    return sets


def run(sets: dict, weights: str | None) -> list[tuple]:
    opts = {"weights": weights} if weights else {}
    rows = []
    for set_name, (sensor, items, meta) in sets.items():
        if len(items) < 2:
            continue
        from sumdun.sensors import get_sensor

        top = float(2 ** (get_sensor(sensor).bits or 11) - 1)
        own_texts = [StatsDescriber().describe(ms, pan, sensor, 4, meta=meta)
                     for _, ms, pan in items]
        scores = {c: [] for c in CONDITIONS}
        for i, (gt, ms, pan) in enumerate(items):
            bare = StatsDescriber().describe(items[i][1], items[i][2], sensor, 4)
            prompts = {"own": own_texts[i], "own without metadata": bare, "shuffled": own_texts[(i + len(items) // 2)
                                                                   % len(items)],
                       "generic": GENERIC, "none": None}
            for c, text in prompts.items():
                out = np.clip(fuse(ms.astype(float), pan.astype(float), "sumdun", sensor=sensor,
                                   prompt=text, **opts), 0, top)
                scores[c].append((q2n(out, gt.astype(float)),
                                  psnr(out, gt.astype(float), data_range=top)))
        own = np.array(scores["own"])
        for c in CONDITIONS[1:]:
            d = own - np.array(scores[c])
            sem = d.std(0, ddof=1) / np.sqrt(len(d))
            rows.append((set_name, len(items), c, d[:, 0].mean(), sem[0], d[:, 1].mean(), sem[1]))
        rows.append((set_name, len(items), "own (absolute)", own[:, 0].mean(), 0.0,
                     own[:, 1].mean(), 0.0))
    return rows


def diversity(data: Path) -> str:
    """Distinct descriptions and mean pairwise cosine of the training prompts' embeddings."""
    import h5py

    texts, vecs = [], []
    for f in sorted(data.glob("*_train.prompts.h5")):
        with h5py.File(f) as g:
            texts += [t.decode() if isinstance(t, bytes) else str(t) for t in g["prompts"][()]]
            vecs.append(g["text_embeds"][()])
    if not texts:
        return "no *_train.prompts.h5 in the data folder: run sumdun prompts first"
    e = np.concatenate(vecs)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    sim = e @ e.T
    off = sim[~np.eye(len(e), dtype=bool)]
    return (f"training prompts: {len(set(texts))} distinct of {len(texts)}; pairwise cosine of "
            f"their embeddings mean {off.mean():.3f} (min {off.min():.3f}, max {off.max():.3f})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/dgsamples")
    ap.add_argument("--weights", default=None, help="a checkpoint folder instead of the shipped")
    ap.add_argument("--limit", type=int, default=None, help="at most N patches per set")
    args = ap.parse_args()
    data = Path(args.data)
    get_encoder("bge-small")  # fail early if the encoder is missing
    rows = run(held_out_sets(data, args.limit), args.weights)
    print("own prompt minus each other condition, mean ± standard error over the patches")
    print("| held-out set | patches | vs | ΔQ2n | ΔPSNR (dB) |\n|---|---:|---|---:|---:|")
    for name, n, c, dq, sq, dp, sp in rows:
        if c == "own (absolute)":
            print(f"| {name} | {n} | own prompt: Q2n {dq:.4f}, PSNR {dp:.2f} | | |")
        else:
            print(f"| {name} | {n} | {c} | {dq:+.4f} ± {sq:.4f} | {dp:+.3f} ± {sp:.3f} |")
    print()
    print(diversity(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
