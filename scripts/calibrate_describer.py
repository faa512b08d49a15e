"""Calibrate the ``stats`` describer on every real scene on this machine, and report how its
words split them.

Cuts each scene (dgsamples WorldView-2/3, and the scenes of ../shared/data when present) into
training-size patches (MS 32 x 32, PAN 128 x 128 at ratio 4; 64 x 64 / 128 at ratio 2), computes
``scene_stats`` on each, and prints: the quantiles of every raw number (where the level limits
in ``sumdun/prompts/stats.py`` come from), the share of patches per attribute value (no value
should describe more than 60 % of the patches unless it really holds there), the number of
distinct descriptions, and, with ``--embed``, the mean pairwise cosine similarity of their
``bge-small`` embeddings.

Run: python scripts/calibrate_describer.py [--embed] [--max-per-scene 60]
"""
from __future__ import annotations

import argparse
import collections
import re
import sys

import numpy as np

from sumdun.prompts.stats import (BRIGHT_LEVELS, EDGE_LEVELS, HAZE_LEVELS, SNR_LEVELS, _level,
                                  render, scene_stats)


def scenes():
    """``(name, ScenePair)`` of every real scene available."""
    from sumdun.io import load_sample
    from sumdun.io.extra import EXTRA_SCENES, load_extra, read_imd, shared_data_root

    for name in ("wv2", "wv3"):
        try:
            p = load_sample(name)
        except (ImportError, FileNotFoundError):
            continue
        from sumdun.io import sample_paths

        imd = next(sample_paths(name)[0].parent.glob("*.IMD"), None)
        if imd is not None:
            p.meta.update(read_imd(imd))
        p.meta["gsd_m"] = abs(p.pan_transform.a) if p.pan_transform is not None else None
        yield f"dgsamples-{name}", p
    if shared_data_root() is not None:
        for name in EXTRA_SCENES:
            yield name, load_extra(name)


def patches(pair, max_n: int, rng):
    r = pair.ratio
    size = 128 // r
    ok = pair.ms_valid & pair.pan_valid.reshape(pair.ms.shape[1], r, pair.ms.shape[2], r
                                                ).all(axis=(1, 3))
    spots = [(y, x) for y in range(0, pair.ms.shape[1] - size + 1, size)
             for x in range(0, pair.ms.shape[2] - size + 1, size)
             if ok[y:y + size, x:x + size].all()]
    if len(spots) > max_n:
        spots = [spots[i] for i in sorted(rng.choice(len(spots), max_n, replace=False))]
    for y, x in spots:
        yield (pair.ms[:, y:y + size, x:x + size],
               pair.pan[:, y * r:(y + size) * r, x * r:(x + size) * r])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-scene", type=int, default=60)
    ap.add_argument("--embed", action="store_true", help="mean pairwise cosine (bge-small)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows, texts, per_scene = [], [], collections.Counter()
    for name, pair in scenes():
        meta = {k: pair.meta[k] for k in ("gsd_m", "sun_elevation", "off_nadir")
                if pair.meta.get(k) is not None}
        for ms, pan in patches(pair, args.max_per_scene, rng):
            st = scene_stats(ms, pan, pair.sensor, pair.ratio, meta=meta,
                             band_names=pair.band_names, nodata=0)
            rows.append((name, st))
            texts.append(render(st))
            per_scene[name] += 1
    print(f"{len(rows)} patches of {len(per_scene)} scenes: " +
          ", ".join(f"{k} {v}" for k, v in per_scene.items()))
    raw = {"edge_density": [], "snr": [], "haze": [], "brightness": [], "structure_px": [],
           "saturated": []}
    for _, st in rows:
        for k in raw:
            raw[k].append(getattr(st, k))
    print("\nquantiles (10, 33, 50, 67, 90 %) of the raw numbers")
    for k, v in raw.items():
        v = np.array(v)
        if k == "haze":
            v = v[v > 0]
        q = np.percentile(v, [10, 33, 50, 67, 90]) if len(v) else []
        print(f"  {k:13} " + "  ".join(f"{x:8.4g}" for x in q))
    levels = {
        "edges": lambda st: _level(st.edge_density, EDGE_LEVELS, ("few", "moderate", "dense")),
        "haze": lambda st: _level(st.haze, HAZE_LEVELS, ("clear", "slight", "hazy"))
        if st.haze else "n/a",
        "noise": lambda st: _level(st.snr, SNR_LEVELS, ("noisy", "moderate", "clean")),
        "brightness": lambda st: _level(st.brightness, BRIGHT_LEVELS, ("dark", "moderate",
                                                                        "bright")),
        "structure": lambda st: f"{st.structure_px:g} px",
        "main cover": lambda st: max(st.fractions.items(), key=lambda kv: kv[1])[0]
        if st.fractions else "no index",
    }
    print("\nshare of patches per attribute value")
    worst = 0.0
    for attr, fn in levels.items():
        c = collections.Counter(fn(st) for _, st in rows)
        share = {k: v / len(rows) for k, v in c.most_common()}
        worst = max(worst, max(share.values()))
        print(f"  {attr:11} " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in share.items()))
    covers = collections.Counter()
    for _, st in rows:
        for k, v in st.fractions.items():
            covers[k] += v
    print("  mean cover  " + ", ".join(f"{k} {100 * v / len(rows):.0f}%" for k, v in
                                       covers.most_common()))
    shapes = collections.Counter(re.sub(r"\d+", "#", t) for t in texts)
    print(f"\n{len(set(texts))} distinct descriptions of {len(texts)}; {len(shapes)} distinct "
          "sentence shapes (numbers masked)")
    if args.embed:
        from sumdun.prompts import get_encoder

        e = get_encoder("bge-small").encode(texts)
        sim = e @ e.T
        off = sim[~np.eye(len(e), dtype=bool)]
        print(f"embeddings: mean pairwise cosine {off.mean():.3f} (min {off.min():.3f}, "
              f"max {off.max():.3f})")
    print("\nexamples:")
    seen = set()
    for name, _ in rows:
        if name in seen:
            continue
        seen.add(name)
        print(f"  [{name}] {texts[[n for n, _ in rows].index(name)]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
