"""Time and peak memory of tiled GeoTIFF fusion (``sumdun fuse``) as the scene grows.

Synthetic 4-band 11-bit GeoTIFF pairs are generated on disk, strip by strip (PAN 2000 to 16000
pixels a side), and each (method, size) is fused in its own process with the default tile
(512) and overlap (32), so its peak resident memory is its own.

Run: python benchmarks/fuse.py            (exp and bt-h up to 16000, sumdun up to 8000)
     python benchmarks/fuse.py --quick    (2000 and 4000 only)
Prints: method, PAN side, seconds, PAN Mpx/s, peak RSS MiB. Target: peak RSS under 2 GiB and
flat as the scene grows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _proc import peak_rss_mib

BANDS, RATIO, STRIP = 4, 4, 512


def _field(y: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """A smooth, scene-wide pattern of band ``k`` at PAN coordinates (no edges between strips)."""
    return (np.sin(x / (53.0 + 7 * k)) * np.cos(y / (71.0 - 5 * k))
            + 0.5 * np.sin((x + 2 * y) / (19.0 + 3 * k)) + 0.3 * np.cos((x - y) / 9.0))


def generate(folder: Path, side: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``ms.tif`` (4 x side/4 x side/4) and ``pan.tif`` (side x side), uint16, strip by
    strip so that generation itself uses bounded memory."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    folder.mkdir(parents=True, exist_ok=True)
    ms_path, pan_path = folder / "ms.tif", folder / "pan.tif"
    if ms_path.exists() and pan_path.exists():
        return ms_path, pan_path
    rng = np.random.default_rng(seed)
    gains = rng.uniform(0.6, 1.4, BANDS)
    ms_side = side // RATIO
    common = dict(driver="GTiff", dtype="uint16", crs="EPSG:32613", tiled=True,
                  blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER")
    with rasterio.open(pan_path, "w", count=1, width=side, height=side,
                       transform=from_origin(500000, 4400000, 0.5, 0.5), **common) as pan_ds, \
            rasterio.open(ms_path, "w", count=BANDS, width=ms_side, height=ms_side,
                          transform=from_origin(500000, 4400000, 2.0, 2.0), **common) as ms_ds:
        for r0 in range(0, side, STRIP):
            r1 = min(side, r0 + STRIP)
            y, x = np.mgrid[r0:r1, 0:side].astype(np.float64)
            bands = np.stack([1000 + 400 * g * _field(y, x, k) for k, g in enumerate(gains)])
            bands += rng.normal(0, 20, bands.shape)
            pan = bands.mean(0, keepdims=True)
            ms = bands.reshape(BANDS, (r1 - r0) // RATIO, RATIO, ms_side, RATIO).mean((2, 4))
            pan_ds.write(np.clip(pan, 1, 2047).astype("uint16"),
                         window=Window(0, r0, side, r1 - r0))
            ms_ds.write(np.clip(ms, 1, 2047).astype("uint16"),
                        window=Window(0, r0 // RATIO, ms_side, (r1 - r0) // RATIO))
    return ms_path, pan_path


def run_one(ms: str, pan: str, out: str, method: str) -> None:
    """Child process: fuse, print the time and the peak memory as JSON."""
    from sumdun.scene_fusion import fuse_geotiff

    t0 = time.perf_counter()
    fuse_geotiff(ms, pan, out, method=method, sensor="generic", progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mib": peak_rss_mib()}))


def measure(cmd: list[str]) -> dict:
    """Run a child command, return the JSON of its last stdout line."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 2000 and 4000 only")
    ap.add_argument("--workdir", default=None, help="where scenes are generated (default: a "
                    "temporary folder; needs ~1 GB for the 16000 scene)")
    args = ap.parse_args()
    plan = {"exp": [2000, 4000, 8000, 16000], "bt-h": [2000, 4000, 8000, 16000],
            "sumdun": [2000, 4000, 8000]}
    if args.quick:
        plan = {k: [s for s in v if s <= 4000] for k, v in plan.items()}
    from sumdun.fusion import list_methods

    plan = {k: v for k, v in plan.items() if k in list_methods()}
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for side in sorted({s for v in plan.values() for s in v}):
            t0 = time.perf_counter()
            ms, pan = generate(Path(tmp) / str(side), side)
            print(f"generated {side} x {side} PAN in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
            for method, sides in plan.items():
                if side not in sides:
                    continue
                out = str(Path(tmp) / f"{method}_{side}.tif")
                res = measure([sys.executable, __file__, "--one", str(ms), str(pan), out,
                               method])
                sec, rss = res["seconds"], res["peak_mib"]
                rows.append((method, side, sec, side * side / 1e6 / sec, rss))
                print(f"{method} {side}: {sec:.1f} s, {rss:.0f} MiB", file=sys.stderr)
                os.unlink(out)
    print(f"tiled fusion of synthetic 4-band uint16 GeoTIFFs (tile 512, overlap 32), "
          f"{os.cpu_count()} CPUs")
    print(f"{'method':8} {'PAN side':>9} {'seconds':>9} {'PAN Mpx/s':>10} {'peak RSS MiB':>13}")
    for method, side, sec, mpx, rss in rows:
        print(f"{method:8} {side:9d} {sec:9.1f} {mpx:10.3f} {rss:13.0f}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--one":
        run_one(*sys.argv[2:])
    else:
        main()
