"""Adapting SUM-DUN to the scene at hand, on sensors its weights never saw (issue #17).

Leave-one-sensor-out: for WorldView-2 and WorldView-3 in turn, the model trained without that
sensor by ``benchmarks/generalization.py --loso`` (trained here first when ``--work`` does not
hold it yet) fuses the held-out sensor's scenes of ``../shared/data`` with no adaptation
(``none``: the network as trained, ``detail_gain`` 0), with the per-band detail gain
calibrated on the scene at the reduced scale (``gain``: ``detail_gain`` ``--detail-gain``, 0.5
as the shipped weights; C numbers per scene, no fine-tuning) and with each fine-tuning mode
(``rr``, ``fr``, ``both``; ``--steps`` steps, seed 0, then fused with the same detail gain), next
to every classical method:

- reduced resolution: the scene delivered as an 11-bit and an 8-bit product, Wald-degraded;
  adaptation sees only the degraded pair (what the method is given); Q2n and PSNR against the
  product's MS;
- full resolution: the scene itself; adaptation on it; HQNR (D_lambda^K, D_S).

Per mode: mean over scenes, and the mean difference to no adaptation with its standard error
over the scenes; seconds of adaptation per scene (the PAirMax scenes are 512 x 512 PAN pixels).

Run: python benchmarks/adaptation.py [--steps 30] [--work runs/loso] [--methods ...]
     [--modes none,gain,fr] [--start 'bt-h|mtf-glp-fs'] [--consistency 3] [--detail-gain 0.5]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generalization import (LOSO_SENSORS, load_scenes, product, reduced_pair,  # noqa: E402
                            score, train_fold)

MODES = ("none", "gain", "rr", "fr", "both")


def _fuse(ms, pan, sensor, method, weights, mode, steps, detail_gain=0.5):
    from sumdun.fusion import fuse

    opts = {}
    if method == "sumdun":
        opts["weights"] = str(weights)
        opts["detail_gain"] = 0.0 if mode == "none" else detail_gain
        if mode not in ("none", "gain"):
            opts.update(adapt=steps, adapt_mode=mode, adapt_seed=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fuse(ms, pan, method, sensor=sensor, **opts)
    return out, time.perf_counter() - t0


def run_scene(ms, pan, sensor, weights, classical, steps, modes=MODES, detail_gain=0.5):
    """``{row: {"11-bit": (Q2n, PSNR), "8-bit linear": ..., "HQNR": h, "s": seconds}}``."""
    from sumdun.metrics import full_resolution

    rows = [f"sumdun {m}" for m in modes] + list(classical)
    res = {r: {} for r in rows}
    for variant in ("11-bit", "8-bit linear"):
        ms_p, pan_p, top, dtype = product(ms, pan, variant)
        ms_lr, pan_lr = reduced_pair(ms_p, pan_p, sensor, dtype)
        for r in rows:
            method, _, mode = r.partition(" ")
            fused, sec = _fuse(ms_lr, pan_lr, sensor, method, weights, mode or "none", steps,
                               detail_gain)
            res[r][variant] = score(fused, ms_p, top, True)
            res[r].setdefault("s", {})[variant] = sec
    ms_i, pan_i = np.rint(ms).astype(np.uint16), np.rint(pan).astype(np.uint16)
    for r in rows:
        method, _, mode = r.partition(" ")
        fused, sec = _fuse(ms_i, pan_i, sensor, method, weights, mode or "none", steps,
                           detail_gain)
        try:
            res[r]["HQNR"] = full_resolution(np.clip(fused, 0, 2047), ms_i, pan_i,
                                             sensor)["HQNR"]
        except ValueError:  # constant blocks (nodata): HQNR undefined for this scene
            res[r]["HQNR"] = float("nan")
        res[r]["s"]["full"] = sec
    return res


def report(title, per_scene, classical):
    rows = list(per_scene[0])
    n = len(per_scene)
    hq = int(np.isfinite([s["sumdun none"]["HQNR"] for s in per_scene]).sum())
    print(f"\n**{title}** ({n} scenes, HQNR on the {hq} without constant blocks; mean over "
          "scenes; Δ = minus no adaptation, ± standard error over the scenes)\n")
    print("| fusion | Q2n 11-bit | Δ | PSNR 11-bit | Q2n 8-bit | Δ | HQNR full res. | Δ | "
          "s (full res.) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def col(r, key, i=None):
        return np.array([s[r][key] if i is None else s[r][key][i] for s in per_scene])

    base = {k: (col("sumdun none", k, 0) if k != "HQNR" else col("sumdun none", k))
            for k in ("11-bit", "8-bit linear", "HQNR")}

    def delta(r, k):
        v = col(r, k, 0) if k != "HQNR" else col(r, k)
        d = (v - base[k])[np.isfinite(v - base[k])]
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        return f"{d.mean():+.4f} ± {se:.4f}"

    best = {k: max(classical, key=lambda m: np.nanmean(col(m, k, 0) if k != "HQNR"
                                                       else col(m, k)))
            for k in ("11-bit", "8-bit linear", "HQNR")}
    show = [r for r in rows if r.startswith("sumdun")] + sorted(set(best.values()))
    for r in show:
        secs = np.mean([s[r]["s"]["full"] for s in per_scene])
        name = r if r.startswith("sumdun") else f"{r} (best classical on " + ", ".join(
            k for k, m in best.items() if m == r) + ")"
        print(f"| {name} | {col(r, '11-bit', 0).mean():.4f} | {delta(r, '11-bit')} | "
              f"{col(r, '11-bit', 1).mean():.2f} | {col(r, '8-bit linear', 0).mean():.4f} | "
              f"{delta(r, '8-bit linear')} | {np.nanmean(col(r, 'HQNR')):.4f} | {delta(r, 'HQNR')} | "
              f"{secs:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="adaptation steps (default 30)")
    ap.add_argument("--work", default="runs/loso", help="leave-one-sensor-out models")
    ap.add_argument("--train-steps", type=int, default=800, help="training batches of a "
                    "fold model that is not there yet")
    ap.add_argument("--methods", default=None, help="classical methods (default: all)")
    ap.add_argument("--modes", default=",".join(MODES), help="adaptation modes (none is "
                    "always run: the differences are to it)")
    ap.add_argument("--start", default="bt-h", help="the fold models' starting estimate "
                    "(generalization.py --loso --start)")
    ap.add_argument("--consistency", type=int, default=0, help="the fold models' "
                    "back-projection steps (generalization.py --loso --consistency)")
    ap.add_argument("--detail-gain", type=float, default=0.5, help="detail_gain of every "
                    "SUM-DUN row but none (default 0.5, as the shipped weights)")
    ap.add_argument("--held-out", default=",".join(LOSO_SENSORS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    modes = ("none",) + tuple(m for m in args.modes.split(",") if m != "none")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"--modes: unknown {', '.join(bad)}; choose from {', '.join(MODES)}")
    from sumdun.fusion import get_method, list_methods
    from sumdun.io.extra import EXTRA_SCENES

    classical = args.methods.split(",") if args.methods else [
        m for m in list_methods() if get_method(m).family == "classical"]
    out = {}
    for held_out in args.held_out.split(","):
        weights = train_fold(held_out, Path(args.work), args.train_steps, args.start,
                             consistency=args.consistency)
        names = [n for n, (_, _, s) in EXTRA_SCENES.items() if s == held_out]
        scenes = load_scenes(names)
        per_scene = [run_scene(ms, pan, s, weights, classical, args.steps, modes,
                               args.detail_gain) for ms, pan, s in scenes.values()]
        out[held_out] = dict(zip(scenes, per_scene))
        report(f"{held_out} held out: the model trained without it, {args.steps} adaptation "
               "steps", per_scene, classical)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
