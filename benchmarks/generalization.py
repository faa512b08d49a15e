"""How SUM-DUN generalises: sensors it never trained on, delivered at other bit depths and band
counts, against every classical method, at reduced resolution (Wald's protocol).

Leave-one-sensor-out (``--loso``, the evidence): for WorldView-2 and WorldView-3 in turn, a
model is trained from scratch by the shipped weights' own recipe (``sumdun.engine.recipe``:
``input_norm: mean``, the learned BT-H / MTF-GLP-FS start, ``consistency: 3`` trained through,
L1 + 0.2 (1 - Q2n), the radiometric augmentation) on every scene of the *other* sensor: its
dgsamples scene (train stripes; val stripes choose the epoch) and its extra scenes of
``../shared/data`` (all rows, 64-pixel patches). It then fuses, with the shipped fusion options
(``detail_gain: 0.5``), the held-out sensor's extra scenes (PAirMax WorldView-2 Miami and
WorldView-3 Munich, SpaceNet WorldView-3 Shanghai and WorldView-2 Rotterdam; see its
MANIFEST.md), against every classical method. ``--steps`` sets the budget of each fold (the
same number of batches for both, whatever their data; the shipped weights had 2400 on both
sensors' data). The shipped weights themselves trained on all these scenes: run without
``--loso`` only with weights that did not (``--weights``).

Each scene is turned into another *product* first, then Wald-degraded in that product's units
and stored back in its data type, as a user's reduced-resolution test would be:

- ``11-bit``: as delivered (digital numbers, 0-2047);
- ``8-bit linear``: ``round(x * 255 / 2047)``, uint8;
- ``8-bit in float32``: the same values as float32 (a numpy pipeline's arrays: nothing tells
  the bit depth, so SUM-DUN's prompt assumes the sensor's 11 bits);
- ``8-bit stretched``: each band (and the PAN) stretched from its 2nd to 98th percentile to
  0-255, uint8 (the usual look of an 8-bit delivery);
- ``16-bit``: ``round(x * 65535 / 2047)``, uint16;
- ``reflectance``: ``x / 2047``, float32.

Every method gets the arrays as they are, with the sensor and no bit-depth hint (SUM-DUN reads
8-bit integers and floats within [0, 1] from the data type, ``fusion.range_from_data``). The
band-count sweep fuses 3 (B, G, R), 4 (B, G, R, NIR), 5 (B, G, R, red edge, NIR1) and 8 bands of
the 11-bit products of the 8-band scenes (3 and 5 bands with the generic sensor: no table has
their MTF gains). Indices: Q2n and PSNR against the product's own MS, in its range (fused values
clipped to it).
Without ``--loso``: the weights (shipped by default) on every extra scene of a sensor their
``meta.json`` does not list (for the shipped weights, the two Sentinel-2 tiles: the 20 m bands
as MS, the mean of the 10 m bands as PAN, ratio 2, reflectance x 10000 in float32, reduced by
Wald's protocol at ratio 2; SUM-DUN fuses them on a finer grid and is told the 10000 range),
or on ``--scenes``.

Run: python benchmarks/generalization.py --loso [--steps 800] [--work runs/loso]
         [--variants 11-bit,...] [--bands 3,4,5,8] [--json OUT.json]
     python benchmarks/generalization.py [--weights DIR] [--scenes NAME,...] [--methods ...]
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from sumdun.engine.recipe import SHIPPED

VARIANTS = ("11-bit", "8-bit linear", "8-bit in float32", "8-bit stretched", "16-bit",
            "reflectance")
BAND_SETS = {3: ("blue", "green", "red"), 4: ("blue", "green", "red", "nir1"),
             5: ("blue", "green", "red", "red_edge", "nir1")}


def product(ms: np.ndarray, pan: np.ndarray, variant: str):
    """``(ms, pan, data range, dtype)`` of the scene delivered as ``variant``."""
    if variant == "11-bit":
        return np.rint(ms), np.rint(pan), 2047.0, np.uint16
    if variant in ("8-bit linear", "8-bit in float32"):
        dtype = np.uint8 if variant == "8-bit linear" else np.float32
        return np.rint(ms * 255 / 2047), np.rint(pan * 255 / 2047), 255.0, dtype
    if variant == "16-bit":
        return np.rint(ms * 65535 / 2047), np.rint(pan * 65535 / 2047), 65535.0, np.uint16
    if variant == "reflectance":
        return ms / 2047, pan / 2047, 1.0, np.float32
    if variant == "8-bit stretched":
        def stretch(a):
            lo, hi = np.percentile(a.reshape(len(a), -1), [2, 98], axis=1)
            return np.rint(np.clip((a - lo[:, None, None]) / (hi - lo)[:, None, None], 0, 1)
                           * 255)
        return stretch(ms), stretch(pan), 255.0, np.uint8
    raise ValueError(variant)


def reduced_pair(ms, pan, sensor, dtype, ratio: int = 4):
    """Wald's protocol in the product's units, the inputs stored back in its data type."""
    from sumdun.degrade import wald

    ms_lr, pan_lr = wald(ms, pan, sensor, ratio=ratio)
    if np.dtype(dtype).kind in "ui" or np.asarray(ms).max() > 1:  # digital numbers
        top = np.iinfo(dtype).max if np.dtype(dtype).kind in "ui" else np.inf
        return (np.clip(np.rint(ms_lr), 0, top).astype(dtype),
                np.clip(np.rint(pan_lr), 0, top).astype(dtype))
    return ms_lr.astype(dtype), pan_lr.astype(dtype)


def load_scenes(names, ratio: int = 4):
    """``{name: (ms, pan, sensor)}`` of the extra scenes of this ``ratio``, cropped to whole
    32-pixel Q2n blocks of the reference, float64."""
    from sumdun.io.extra import EXTRA_SCENES, load_extra

    out = {}
    for name in names or EXTRA_SCENES:
        pair = load_extra(name)
        if pair.ratio != ratio:
            continue
        c, h, w = pair.ms.shape
        h, w = h // 32 * 32, w // 32 * 32  # whole Q2n blocks at the reference's scale
        out[name] = (pair.ms[:, :h, :w].astype(np.float64),
                     pair.pan[:, :ratio * h, :ratio * w].astype(np.float64), pair.sensor)
    return out


def score(fused, gt, top, integer, ratio: int = 4):
    from sumdun.metrics import reduced_resolution

    r = reduced_resolution(np.clip(fused, 0, top), gt, ratio=ratio, data_range=top,
                           quantize=integer and top >= 255)
    return r["Q2n"], r["PSNR"]


#: Sentinel-2 L1C (``../shared/data/sentinel2-dsen2``): reflectance x 10000 in float32
S2_RANGE = 10000.0


def run_ratio2(ms, pan, sensor, methods, weights, sumdun_options=None):
    """``{method: (Q2n, PSNR)}`` of a ratio-2 scene as delivered (Sentinel-2: the 20 m bands
    and the mean of the 10 m ones as PAN), reduced by Wald's protocol at ratio 2; SUM-DUN fuses
    it on a finer grid (``methods/neural/finer_grid.py``) and is told the range."""
    from sumdun.degrade import wald
    from sumdun.fusion import fuse

    ms_lr, pan_lr = wald(ms, pan, sensor, ratio=2)
    res = {}
    for m in methods:
        opts = {}
        if m == "sumdun":
            opts = {**({"weights": weights} if weights else {}), "data_range": S2_RANGE,
                    **(sumdun_options or {})}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = fuse(ms_lr.astype(np.float32), pan_lr.astype(np.float32), m, sensor=sensor,
                         ratio=2, **opts)
        res[m] = score(fused, ms, S2_RANGE, True, ratio=2)
    return res


def run_case(ms, pan, sensor, methods, variant, bands, weights, sumdun_options=None):
    """``{method: (Q2n, PSNR)}`` for one scene, product and band set (``sumdun_options``:
    fusion options of SUM-DUN, e.g. ``{"detail_gain": 0.5}``)."""
    from sumdun.fusion import fuse

    ms_p, pan_p, top, dtype = product(ms, pan, variant)
    sensor_arg = sensor
    if bands != len(ms_p):
        idx = [list(sensor.band_names).index(n) for n in BAND_SETS[bands]]
        ms_p = ms_p[idx]
        sensor_arg = sensor if bands == 4 else None
    ms_lr, pan_lr = reduced_pair(ms_p, pan_p, sensor_arg or "generic", dtype)
    integer = top > 1
    res = {}
    for m in methods:
        opts = {}
        if m == "sumdun":
            opts = {**({"weights": weights} if weights else {}), **(sumdun_options or {})}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = fuse(ms_lr, pan_lr, m, sensor=sensor_arg, **opts)
        res[m] = score(fused, ms_p, top, integer)
    return res


def table(title, rows, methods):
    """Mean Q2n / PSNR over scenes, wins, and SUM-DUN's margin to the best classical method."""
    print(f"\n**{title}** ({len(rows)} scenes; mean over scenes; wins = scenes where the "
          "method is best)\n")
    print("| method | Q2n | PSNR | Q2n wins | PSNR wins |")
    print("|---|---:|---:|---:|---:|")
    mean = {m: (np.mean([r[m][0] for r in rows]), np.mean([r[m][1] for r in rows]))
            for m in methods}
    wins = {m: [0, 0] for m in methods}
    for r in rows:
        for k in (0, 1):
            wins[max(methods, key=lambda m: r[m][k])][k] += 1
    for m in sorted(methods, key=lambda m: -mean[m][0]):
        print(f"| {m} | {mean[m][0]:.4f} | {mean[m][1]:.2f} | {wins[m][0]} | {wins[m][1]} |")
    if "sumdun" in methods and len(methods) > 1:
        others = [m for m in methods if m != "sumdun"]
        bq = max(others, key=lambda m: mean[m][0])
        bp = max(others, key=lambda m: mean[m][1])
        print(f"\nSUM-DUN - best classical: Q2n {mean['sumdun'][0] - mean[bq][0]:+.4f} ({bq}), "
              f"PSNR {mean['sumdun'][1] - mean[bp][1]:+.2f} dB ({bp})")
    return mean, wins


LOSO_SENSORS = ("wv2", "wv3")


def train_fold(held_out: str, work: Path, steps: int, start: str = "bt-h",
               band_aug: float = 0.0, consistency: int = 0, mtf_aug: float = 0.0,
               pan_aug: float = 0.0, meta_dropout: float = 0.0) -> Path:
    """A model that never saw ``held_out``: the unified recipe (``sumdun.engine.recipe``, the
    shipped weights' own) on every scene of the other sensors, for about ``steps`` batches of 8
    (whole epochs) from the starting estimate ``start``, with ``consistency`` back-projection
    steps and the ``band_aug`` / ``mtf_aug`` / ``pan_aug`` augmentations; returns its best
    checkpoint folder (runs/loso/without_<sensor><tag>)."""
    from sumdun.engine.recipe import RECIPE_SENSORS, train_recipe

    tag = start.replace("|", "-gated-")  # no shell metacharacter in the folder name
    tag = (("" if start == "bt-h" else f"_{tag}") + (f"_bands{band_aug:g}" if band_aug else "")
           + (f"_consistency{consistency}" if consistency else "")
           + (f"_mtf{mtf_aug:g}" if mtf_aug else "") + (f"_pan{pan_aug:g}" if pan_aug else "")
           + (f"_nometa{meta_dropout:g}" if meta_dropout else ""))
    return train_recipe([s for s in RECIPE_SENSORS if s != held_out], work,
                        work / f"without_{held_out}{tag}", steps, start=start,
                        consistency=consistency, band_aug=band_aug, mtf_aug=mtf_aug,
                        pan_aug=pan_aug, meta_dropout=meta_dropout)


def loso(methods, steps: int, work: Path, start: str = "bt-h", band_aug: float = 0.0,
         consistency: int = 0, held: tuple = LOSO_SENSORS, sumdun_options=None,
         mtf_aug: float = 0.0, pan_aug: float = 0.0,
         variants=("11-bit", "8-bit linear"), bands=(), meta_dropout: float = 0.0) -> dict:
    """For each held-out sensor: its fold model on its scenes, every product of ``variants``
    (all bands) and every band count of ``bands`` (11-bit, its 8-band scenes)."""
    from sumdun.io.extra import EXTRA_SCENES

    results = {}
    for held_out in held:
        weights = train_fold(held_out, work, steps, start, band_aug, consistency, mtf_aug,
                             pan_aug, meta_dropout)
        names = [n for n, (_, _, s) in EXTRA_SCENES.items() if s == held_out]
        scenes = load_scenes(names)
        for variant in variants:
            rows = [run_case(ms, pan, s, methods, variant, len(ms), str(weights),
                             sumdun_options) for ms, pan, s in scenes.values()]
            results[f"{held_out} {variant}"] = dict(zip(scenes, rows))
            table(f"leave {held_out} out: a model trained without {held_out}, on the "
                  f"{held_out} scenes, {variant}", rows, methods)
        for nb in bands:
            eight = {n: v for n, v in scenes.items() if len(v[0]) == 8}
            rows = [run_case(ms, pan, s, methods, "11-bit", nb, str(weights), sumdun_options)
                    for ms, pan, s in eight.values()]
            results[f"{held_out} {nb} bands"] = dict(zip(eight, rows))
            table(f"leave {held_out} out: {nb} bands of its 8-band scenes, 11-bit", rows,
                  methods)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", default=None, help="comma-separated extra scene names "
                    "(default: every scene of a sensor the weights never trained on, meta.json "
                    "sensors)")
    ap.add_argument("--methods", default=None, help="default: every registered method")
    ap.add_argument("--weights", default=None, help="SUM-DUN checkpoint folder (default "
                    "the shipped weights)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--bands", default="3,4,5,8")
    ap.add_argument("--json", default=None, help="also write every number here")
    ap.add_argument("--loso", action="store_true", help="leave-one-sensor-out: train a model "
                    "without each sensor and test it there")
    ap.add_argument("--steps", type=int, default=800, help="--loso: training batches per "
                    "fold (whole epochs; 800 took 8 to 13 minutes on 2 cores)")
    ap.add_argument("--start", default=SHIPPED["start"], help="--loso: the model's starting "
                    "estimate, initial_estimate: exp, bt-h, mtf-glp-fs, bt-h+mtf-glp-fs (their "
                    "mean), 'bt-h|mtf-glp-fs' (a learned mix; the shipped recipe's, default)")
    ap.add_argument("--band-aug", type=float, default=0.0, help="--loso: share of training "
                    "batches on a random subset and order of their bands (band_aug)")
    ap.add_argument("--mtf-aug", type=float, default=0.0, help="--loso: share of training "
                    "samples whose MS is made again with other sensors' MTF gains (mtf_aug)")
    ap.add_argument("--pan-aug", type=float, default=0.0, help="--loso: share of training "
                    "samples whose PAN is partly another spectral response (pan_aug)")
    ap.add_argument("--consistency", type=int, default=SHIPPED["consistency"], help="--loso: "
                    "back-projection steps onto Wald's consistency at the model's output, "
                    "trained through (consistency; the shipped recipe's 3 by default)")
    ap.add_argument("--meta-dropout", type=float, default=SHIPPED["meta_dropout"],
                    help="--loso: share of training samples whose prompt describes the pair "
                    "without its metadata (prompt_meta_dropout; the shipped recipe's 0.5)")
    ap.add_argument("--detail-gain", type=float, default=None, help="SUM-DUN's detail_gain at "
                    "fusion (0 to 1; default the weights' own, and the shipped 0.5 for --loso's fold "
                    "models)")
    ap.add_argument("--held-out", default=",".join(LOSO_SENSORS), help="--loso: the sensors "
                    "to leave out in turn")
    ap.add_argument("--work", default="runs/loso", help="--loso: data and runs (resumable)")
    args = ap.parse_args()
    from sumdun.fusion import get_method, list_methods
    from sumdun.io.extra import shared_data_root

    if shared_data_root() is None:
        raise SystemExit("../shared/data is not on this machine (set SUMDUN_SHARED_DATA)")
    methods = args.methods.split(",") if args.methods else [
        m for m in list_methods() if get_method(m).family == "classical" or m == "sumdun"]
    sd_opts = {} if args.detail_gain is None else {"detail_gain": args.detail_gain}
    if args.loso:
        if args.detail_gain is None:  # the fold models fuse as the shipped weights do
            sd_opts = {"detail_gain": SHIPPED["detail_gain"]}
        res = loso(methods, args.steps, Path(args.work), args.start, args.band_aug,
                   args.consistency, tuple(args.held_out.split(",")), sd_opts, args.mtf_aug,
                   args.pan_aug, args.variants.split(","),
                   [int(b) for b in args.bands.split(",") if b], args.meta_dropout)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        return
    from sumdun.io.extra import EXTRA_SCENES
    from sumdun.weights import load_pretrained

    seen = set(load_pretrained(args.weights or "sumdun_small")[1].get("sensors", []))
    names = (args.scenes.split(",") if args.scenes else
             [n for n, (_, _, s) in EXTRA_SCENES.items() if s not in seen])
    print(f"weights {args.weights or 'sumdun_small (shipped)'}, trained on "
          f"{', '.join(sorted(seen)) or 'unknown sensors'}: scenes {', '.join(names)}")
    t0 = time.time()
    results = {"variants": {}, "bands": {}, "ratio 2": {}}
    scenes = load_scenes(names)
    for variant in args.variants.split(",") if scenes else ():
        rows = [run_case(ms, pan, s, methods, variant, len(ms), args.weights, sd_opts)
                for ms, pan, s in scenes.values()]
        results["variants"][variant] = dict(zip(scenes, rows))
        table(f"{variant} products, all bands", rows, methods)
    for nb in (int(b) for b in args.bands.split(",") if b):
        rows = [run_case(ms, pan, s, methods, "11-bit", nb, args.weights, sd_opts)
                for ms, pan, s in scenes.values() if len(ms) == 8]
        if rows:
            results["bands"][nb] = rows
            table(f"{nb} bands of the 8-band scenes, 11-bit", rows, methods)
    scenes2 = load_scenes(names, ratio=2)
    if scenes2:
        rows = [run_ratio2(ms, pan, s, methods, args.weights, sd_opts)
                for ms, pan, s in scenes2.values()]
        results["ratio 2"] = dict(zip(scenes2, rows))
        table("ratio 2 (Sentinel-2 20 m bands, PAN = mean of the 10 m bands), as delivered",
              rows, methods)
    scenes = {**scenes, **scenes2}
    print(f"\n{len(scenes)} scenes ({', '.join(scenes)}), {time.time() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
