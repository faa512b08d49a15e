"""``make demo``: fuse a real sample scene, write a GeoTIFF, a quicklook PNG and a metrics table."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .degrade import wald
from .fusion import fuse, list_methods
from ._deps import require
from .io import load_sample, sample_paths
from .metrics import full_resolution, reduced_resolution
from .scene_fusion import fuse_geotiff
from .viz import side_by_side, stretch, true_colour, write_png

#: methods shown by the demo, best available first
DEMO_METHODS = ("sumdun", "bt-h", "mtf-glp-hpm", "exp")  # sumdun when its weights ship


def _table(rows: list[dict], keys: list[str]) -> str:
    head = "| method | " + " | ".join(keys) + " |"
    sep = "|---|" + "---:|" * len(keys)
    body = ["| " + r["method"] + " | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |"
            for r in rows]
    return "\n".join([head, sep, *body])


def run_demo(out: Path, sample: str = "wv3", methods=None, quicklook_px: int = 640,
             progress: bool = True) -> dict:
    """Fuse the dgsamples scene ``sample`` with each demo method and assess it.

    Writes to ``out``: ``<sample>_<method>.tif`` (the whole scene fused tile by tile with
    :func:`sumdun.scene_fusion.fuse_geotiff`, on the PAN grid, MS dtype, nodata 0, with
    overviews),
    ``<sample>_quicklook.png`` (true colour, MS before / fused after, one stretch), and
    ``metrics.md`` / ``metrics.json`` (reduced-resolution indices by Wald's protocol against the
    original MS, and full-resolution D_lambda, D_S, HQNR of the written GeoTIFF, on the
    scene's nodata-free core).
    """
    rasterio = require("rasterio")
    out.mkdir(parents=True, exist_ok=True)
    methods = [m for m in (methods or DEMO_METHODS) if m in list_methods()]
    t0 = time.perf_counter()
    full = load_sample(sample)
    print(f"scene: {full.describe()}")
    pair = full.valid_core(multiple=8)  # nodata-free core; PAN sides multiples of 32 (Q blocks)
    s, r = pair.sensor, pair.ratio
    print(f"nodata-free core: MS {pair.ms.shape[1]} x {pair.ms.shape[2]} at MS offset "
          f"{pair.meta['crop'][:2]}")
    ms = pair.ms.astype(np.float64)
    pan = pair.pan.astype(np.float64)
    ms_lr, pan_lr = wald(ms, pan, s, r)  # reduced-resolution pair; reference = original MS
    rows, fused_full = [], {}
    ms_path, pan_path = sample_paths(sample)
    r0, c0, mh, mw = pair.meta["crop"]  # the core, in MS pixels of the scene's shared window
    for k, name in enumerate(methods, 1):
        t = time.perf_counter()
        tif = out / f"{sample}_{name}.tif"
        print(f"[{k}/{len(methods)}] {name}: fusing the whole scene ...", flush=True)
        # the command users run: the whole scene, tiled, nodata propagated, on the PAN grid
        fuse_geotiff(ms_path, pan_path, tif, method=name, sensor=s, ratio=r, nodata=0,
                     progress=progress, overviews=True)
        with rasterio.open(tif) as ds:
            fused = ds.read(window=((r0 * r, (r0 + mh) * r), (c0 * r, (c0 + mw) * r)))
        fused = fused.astype(np.float64)
        fused_rr = fuse(ms_lr, pan_lr, method=name, sensor=s, ratio=r)
        rr = reduced_resolution(np.clip(fused_rr, 0, s.max_value), ms, ratio=r,
                                data_range=s.max_value)
        fr = full_resolution(np.clip(fused, 0, s.max_value), ms, pan, s, r)
        rows.append({"method": name, **rr, **fr, "seconds": time.perf_counter() - t})
        fused_full[name] = fused
        print(f"{name}: wrote {tif} ({time.perf_counter() - t:.1f} s)")
    # quicklook: centre crop, MS (nearest) before, best method after, one stretch
    h, w = pan.shape[1:]
    q = min(quicklook_px, h, w)
    y0, x0 = (h - q) // 2 // r * r, (w - q) // 2 // r * r
    before = np.repeat(np.repeat(ms[:, y0 // r:(y0 + q) // r, x0 // r:(x0 + q) // r], r, 1), r, 2)
    rgb_before, lim = stretch(true_colour(before, s.rgb))
    panels = [rgb_before]
    for name in methods:
        after = fused_full[name][:, y0:y0 + q, x0:x0 + q]
        panels.append(stretch(true_colour(after, s.rgb), limits=lim)[0])
    pan_crop = pan[:, y0:y0 + q, x0:x0 + q]
    panels.append(stretch(np.repeat(pan_crop, 3, 0))[0])
    png = write_png(out / f"{sample}_quicklook.png", side_by_side(panels))
    rr_keys = ["Q2n", "Q_avg", "SAM", "ERGAS", "SCC", "PSNR"]
    fr_keys = ["D_lambda", "D_S", "HQNR"]
    md = (f"# {s.name} sample ({sample}), MS {ms.shape[1]} x {ms.shape[2]}, ratio {r}\n\n"
          f"Reduced resolution (Wald protocol, reference = original MS, {s.bits}-bit, "
          f"SAM in degrees, PSNR over {s.max_value:g}):\n\n" + _table(rows, rr_keys)
          + "\n\nFull resolution (no reference):\n\n" + _table(rows, fr_keys) + "\n\n"
          f"Quicklook ({png.name}): MS (nearest) | " + " | ".join(methods) + " | PAN\n"
          + ("\nNote: the shipped SUM-DUN weights were trained on the top rows of the dgsamples "
             "scenes, which this whole-scene table includes; `python benchmarks/quality.py` "
             "compares methods on held-out test stripes only.\n" if "sumdun" in methods else ""))
    (out / "metrics.md").write_text(md)
    (out / "metrics.json").write_text(json.dumps({"sample": sample, "sensor": s.key,
                                                  "rows": rows}, indent=2))
    print("\n" + md)
    print(f"outputs in {out}/ ({time.perf_counter() - t0:.1f} s)")
    return {"rows": rows, "png": png}
