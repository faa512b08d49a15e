"""Adapting SUM-DUN to the scene at hand, on sensors its weights never saw (issue #17).

Leave-one-sensor-out: for WorldView-2 and WorldView-3 in turn, the model trained without that
sensor by ``benchmarks/generalization.py --loso`` with the shipped recipe (trained here first
when ``--work`` does not hold it yet) fuses the held-out sensor's scenes of ``../shared/data``:

- ``none``: the network as trained (``detail_gain`` 0);
- ``gain``: the shipped fusion, the per-band detail gain calibrated on the scene at the
  reduced scale (``detail_gain`` ``--detail-gain``, 0.5 as the shipped weights; C numbers per
  scene, no fine-tuning);
- ``rr``, ``fr``, ``both``: each fine-tuning mode (``--steps`` steps of ``--params``, seed 0),
  then the same fusion as ``gain``;
- ``oracle`` (reduced resolution only): as many steps of fine-tuning every parameter on the
  true reference, which no user has: the ceiling of any adaptation of that length;

next to every classical method:

- reduced resolution: the scene delivered as an 11-bit and an 8-bit product, Wald-degraded;
  adaptation sees only the degraded pair (what the method is given); Q2n and PSNR against the
  product's MS;
- full resolution: the scene itself; adaptation on it; HQNR (D_lambda^K, D_S).

Per mode: mean over scenes, and the mean difference to ``--baseline`` (default ``gain``, what
the shipped weights do without ``--adapt``) with its standard error over the scenes; seconds per
scene, fusion included (the PAirMax scenes are 512 x 512 PAN pixels).

Run: python benchmarks/adaptation.py [--steps 30] [--params physics] [--work runs/loso]
     [--methods ...] [--modes none,gain,rr,fr,both,oracle] [--baseline gain] [--detail-gain 0.5]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generalization import (LOSO_SENSORS, load_scenes, product, reduced_pair,  # noqa: E402
                            score, train_fold)
from sumdun.engine.recipe import SHIPPED  # noqa: E402

MODES = ("none", "gain", "rr", "fr", "both", "oracle")


def reference_tuning(ref: np.ndarray, lr: float = 1e-4):
    """A stand-in for :func:`sumdun.engine.adapt.adapt` that cheats: it fine-tunes every
    parameter on the true reference ``ref`` ``(C, rh, rw)`` (L1 on the whole pair, Adam at
    ``lr``, as many steps as asked). Not a method: the ceiling of what any adaptation of that
    many steps could reach on this pair (the ``oracle`` row; reduced resolution only)."""
    import copy

    import torch

    def tune(model, ms, pan, sensor, steps=30, seed=0, text_embeds=None, scale=2047.0, **_):
        net = copy.deepcopy(model).train()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        m, p = (torch.as_tensor(a).float().div(scale) for a in (ms, pan))
        r = torch.as_tensor(ref).float()[None].div(scale)
        t = None if text_embeds is None else text_embeds.float()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for _ in range(steps):
                loss = (net(m, p, t) - r).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return net.eval(), {"steps": steps}
    return tune


def _fuse(ms, pan, sensor, method, weights, mode, steps, detail_gain=0.5, params="physics",
          ref=None):
    from unittest import mock

    from sumdun.fusion import fuse

    opts = {}
    if method == "sumdun":
        if mode == "oracle" and ref is None:  # full resolution: there is no reference
            return None, float("nan")
        opts["weights"] = str(weights)
        opts["detail_gain"] = 0.0 if mode == "none" else detail_gain
        if mode not in ("none", "gain"):
            # the oracle's stand-in ignores adapt_mode; "rr" only passes the option checks
            opts.update(adapt=steps, adapt_mode="rr" if mode == "oracle" else mode,
                        adapt_seed=0, adapt_params=params)
    t0 = time.perf_counter()
    with warnings.catch_warnings(), (mock.patch("sumdun.engine.adapt.adapt",
                                                reference_tuning(ref)) if mode == "oracle"
                                     else contextlib.nullcontext()):
        warnings.simplefilter("ignore")
        out = fuse(ms, pan, method, sensor=sensor, **opts)
    return out, time.perf_counter() - t0


def run_scene(ms, pan, sensor, weights, classical, steps, modes=MODES, detail_gain=0.5,
              params="physics"):
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
                               detail_gain, params, ref=ms_p)
            res[r][variant] = score(fused, ms_p, top, True)
            res[r].setdefault("s", {})[variant] = sec
    ms_i, pan_i = np.rint(ms).astype(np.uint16), np.rint(pan).astype(np.uint16)
    for r in rows:
        method, _, mode = r.partition(" ")
        fused, sec = _fuse(ms_i, pan_i, sensor, method, weights, mode or "none", steps,
                           detail_gain, params)
        try:
            if fused is None:
                raise ValueError("no full-resolution run")
            res[r]["HQNR"] = full_resolution(np.clip(fused, 0, 2047), ms_i, pan_i,
                                             sensor)["HQNR"]
        except ValueError:  # constant blocks (nodata): HQNR undefined for this scene
            res[r]["HQNR"] = float("nan")
        res[r]["s"]["full"] = sec
    return res


def report(title, per_scene, classical, baseline="gain"):
    rows = list(per_scene[0])
    n = len(per_scene)
    ref = f"sumdun {baseline}"
    hq = int(np.isfinite([s[ref]["HQNR"] for s in per_scene]).sum())
    print(f"\n**{title}** ({n} scenes, HQNR on the {hq} without constant blocks; mean over "
          f"scenes; Δ = minus {ref}, ± standard error over the scenes)\n")
    print("| fusion | Q2n 11-bit | Δ | PSNR 11-bit | Δ | Q2n 8-bit | Δ | HQNR full res. | Δ | "
          "s (full res.) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def col(r, key, i=None):
        return np.array([s[r][key] if i is None else s[r][key][i] for s in per_scene])

    def delta(r, k, i=0):
        v, b = (col(x, k, i) if k != "HQNR" else col(x, k) for x in (r, ref))
        d = (v - b)[np.isfinite(v - b)]
        if not len(d):
            return "–"
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        return f"{d.mean():+.{2 if i else 4}f} ± {se:.{2 if i else 4}f}"

    best = {k: max(classical, key=lambda m: np.nanmean(col(m, k, 0) if k != "HQNR"
                                                       else col(m, k)))
            for k in ("11-bit", "8-bit linear", "HQNR")}
    show = [r for r in rows if r.startswith("sumdun")] + sorted(set(best.values()))
    def num(v, digits):
        return "–" if not np.isfinite(v) else f"{v:.{digits}f}"

    for r in show:
        secs = np.mean([s[r]["s"]["full"] for s in per_scene])
        hqnr = col(r, "HQNR")
        hqnr = np.nanmean(hqnr) if np.isfinite(hqnr).any() else np.nan
        name = r if r.startswith("sumdun") else f"{r} (best classical on " + ", ".join(
            k for k, m in best.items() if m == r) + ")"
        print(f"| {name} | {col(r, '11-bit', 0).mean():.4f} | {delta(r, '11-bit')} | "
              f"{col(r, '11-bit', 1).mean():.2f} | {delta(r, '11-bit', 1)} | "
              f"{col(r, '8-bit linear', 0).mean():.4f} | "
              f"{delta(r, '8-bit linear')} | {num(hqnr, 4)} | {delta(r, 'HQNR')} | "
              f"{num(secs, 1)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="adaptation steps (default 30)")
    ap.add_argument("--work", default="runs/loso", help="leave-one-sensor-out models")
    ap.add_argument("--train-steps", type=int, default=SHIPPED["steps"], help="training "
                    "batches of a fold model that is not there yet")
    ap.add_argument("--methods", default=None, help="classical methods (default: all)")
    ap.add_argument("--modes", default=",".join(MODES), help="adaptation modes (the "
                    "baseline is always run: the differences are to it)")
    ap.add_argument("--baseline", default="gain", choices=MODES, help="the row the "
                    "differences are to (default gain: the shipped fusion without --adapt)")
    ap.add_argument("--params", default="physics", choices=("physics", "all"),
                    help="what the fine-tuning modes move (adapt_params)")
    ap.add_argument("--start", default=SHIPPED["start"], help="the fold models' starting "
                    "estimate (generalization.py --loso --start; the shipped recipe's)")
    ap.add_argument("--consistency", type=int, default=SHIPPED["consistency"], help="the "
                    "fold models' back-projection steps (the shipped recipe's 3)")
    ap.add_argument("--meta-dropout", type=float, default=SHIPPED["meta_dropout"],
                    help="the fold models' prompt_meta_dropout (the shipped recipe's 0.5)")
    ap.add_argument("--detail-gain", type=float, default=SHIPPED["detail_gain"],
                    help="detail_gain of every SUM-DUN row but none (default 0.5, as the "
                    "shipped weights)")
    ap.add_argument("--held-out", default=",".join(LOSO_SENSORS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    modes = (args.baseline,) + tuple(m for m in args.modes.split(",") if m != args.baseline)
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
                             consistency=args.consistency, meta_dropout=args.meta_dropout)
        names = [n for n, (_, _, s) in EXTRA_SCENES.items() if s == held_out]
        scenes = load_scenes(names)
        per_scene = [run_scene(ms, pan, s, weights, classical, args.steps, modes,
                               args.detail_gain, args.params) for ms, pan, s in scenes.values()]
        out[held_out] = dict(zip(scenes, per_scene))
        report(f"{held_out} held out: the model trained without it, {args.steps} adaptation "
               f"steps of {args.params} parameters (oracle: of all)", per_scene, classical,
               args.baseline)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
