"""Time and peak memory of every classical method fusing the WorldView-3 dgsamples scene
(MS 8 x 835 x 835, PAN 3340 x 3340, 11-bit), next to GDAL's gdal_pansharpen (weighted Brovey,
Debian package gdal-bin) as the outside reference.

Run: python benchmarks/classical.py [--only bt-h,exp]   (prints a table; each method runs in its
own process so that its peak resident memory is its own; methods that compute in float32 get a
second row with float32 inputs, and those that also compute on numpy arrays without torch
(BT-H) a third with float32 torch tensors; the GDAL row needs gdal_pansharpen(.py) on PATH)
     python benchmarks/classical.py --e2e   (only the end-to-end comparison below)

End to end: ``sumdun fuse --method bt-h`` and ``gdal_pansharpen`` (Debian's gdal-bin; without it,
GDAL's VRTPansharpenedDataset through the GDAL that rasterio ships), whole commands from process
start to the file on disk, run alternately in one session, with each tool's default output and
with the same output options (tiled DEFLATE GeoTIFF, compression on every core).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _proc import peak_rss_mib

#: each time is the best of this many runs (the machine is shared; GDAL gets the same) ...
REPEATS = 3
#: ... except for methods slower than this (seconds), which run once
SLOW = 20.0


def run_one(method: str, dtype: str = "float64") -> None:
    """Child process: load the scene as ``dtype`` (``float32-torch``: float32 torch tensors,
    for the methods that also compute on numpy arrays), fuse, print the fuse time as JSON."""
    from sumdun.fusion import fuse
    from sumdun.io import load_sample

    pair = load_sample("wv3")
    ms, pan = pair.ms.astype(dtype.split("-")[0]), pair.pan.astype(dtype.split("-")[0])
    if dtype.endswith("-torch"):
        import torch

        ms, pan = torch.from_numpy(ms), torch.from_numpy(pan)
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fuse(ms, pan, method=method, sensor="wv3")
        times.append(time.perf_counter() - t0)
        del out
        if times[-1] > SLOW:
            break
    print(json.dumps({"seconds": min(times), "peak_mib": peak_rss_mib()}))


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time, ``ru_maxrss`` (MiB; includes the parent's pages at fork: only the GDAL row,
    a separate executable, uses it) of a child command, and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read()
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, out


def main(only: list[str] | None = None) -> None:
    from sumdun.fusion import get_method, list_methods
    from sumdun.io import sample_paths

    rows = []
    base_wall, _, base_out = measure([sys.executable, "-c",
                                      "import numpy as np, json, sys; sys.path.insert(0, "
                                      f"{os.path.dirname(os.path.abspath(__file__))!r}); "
                                      "from _proc import peak_rss_mib; "
                                      "from sumdun.io import load_sample; "
                                      "p = load_sample('wv3'); p.ms.astype(float); "
                                      "p.pan.astype(float); print(peak_rss_mib())"])
    base_rss = float(base_out.strip().splitlines()[-1])
    names = [m for m in list_methods() if get_method(m).family == "classical"
             and (not only or m in only)]
    runs = [(m, "float64") for m in names] + [(m, "float32") for m in names
                                              if get_method(m).float32] + \
        [(m, "float32-torch") for m in names if get_method(m).numpy and get_method(m).float32]
    for method, dtype in runs:
        wall, _, out = measure([sys.executable, __file__, "--one", method, dtype])
        res = json.loads(out.strip().splitlines()[-1])
        label = {"float64": method, "float32": f"{method} (float32 in and out)",
                 "float32-torch": f"{method} (float32 torch tensors)"}[dtype]
        rows.append((label, res["seconds"], res["peak_mib"]))
    gdal = shutil.which("gdal_pansharpen.py") or shutil.which("gdal_pansharpen")
    if gdal:
        ms_tif, pan_tif = sample_paths("wv3")
        with tempfile.TemporaryDirectory() as tmp:
            out_tif = os.path.join(tmp, "gdal_brovey.tif")
            walls, rss = [], 0.0
            for _ in range(REPEATS):
                wall, rss, _ = measure([gdal, "-q", "-threads", "ALL_CPUS", str(pan_tif),
                                        str(ms_tif), out_tif])
                walls.append(wall)
        rows.append(("gdal_pansharpen (weighted Brovey)", min(walls), rss))
    else:
        print("gdal_pansharpen not found: apt-get install gdal-bin for the GDAL row")
    print("fusing WorldView-3 dgsamples: MS 8 x 835 x 835 -> 8 x 3340 x 3340 (float64 unless noted), "
          f"{os.cpu_count()} CPUs")
    print(f"baseline process (scene loaded as float64): peak {base_rss:.0f} MiB")
    print(f"{'method':36} {'fuse s':>8} {'peak RSS MiB':>13}")
    for name, sec, rss in rows:
        print(f"{name:36} {sec:8.2f} {rss:13.0f}")
    print(f"(best of {REPEATS}; method rows: time of fuse() alone; GDAL row: whole command, "
          "reading and writing included)")
    if not only or "bt-h" in only:
        print_end_to_end(end_to_end())


_VRT_SCRIPT = """
import sys
import rasterio, rasterio.shutil
ms, pan, out, *co = sys.argv[1:]
with rasterio.open(ms) as d:
    n = d.count
bands = "".join(f'<SpectralBand dstBand="{i}"><SourceFilename relativeToVRT="0">{ms}'
                f'</SourceFilename><SourceBand>{i}</SourceBand></SpectralBand>'
                for i in range(1, n + 1))
vrt = ('<VRTDataset subClass="VRTPansharpenedDataset"><PansharpeningOptions>'
       '<NumThreads>ALL_CPUS</NumThreads><PanchroBand><SourceFilename relativeToVRT="0">'
       f'{pan}</SourceFilename><SourceBand>1</SourceBand></PanchroBand>{bands}'
       '</PansharpeningOptions></VRTDataset>')
rasterio.shutil.copy(vrt, out, driver="GTiff", **dict(c.split("=", 1) for c in co))
"""


def end_to_end(repeats: int = 5) -> list[tuple[str, float, float]]:
    """Best-of-``repeats`` wall time of whole commands, run alternately (sumdun, GDAL, ...)."""
    from sumdun.io import sample_paths

    ms_tif, pan_tif = map(str, sample_paths("wv3"))
    sumdun = shutil.which("sumdun") or os.path.join(os.path.dirname(sys.executable), "sumdun")
    gdal = shutil.which("gdal_pansharpen.py") or shutil.which("gdal_pansharpen")
    co = ["COMPRESS=DEFLATE", "TILED=YES", "NUM_THREADS=ALL_CPUS"]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o.tif")
        if gdal:
            g_name = "gdal_pansharpen (weighted Brovey)"
            g_plain = [gdal, "-q", "-threads", "ALL_CPUS", pan_tif, ms_tif, out]
            g_same = g_plain[:-3] + sum((["-co", c] for c in co), []) + g_plain[-3:]
        else:
            g_name = "GDAL pansharpening via rasterio (weighted Brovey)"
            g_plain = [sys.executable, "-c", _VRT_SCRIPT, ms_tif, pan_tif, out]
            g_same = g_plain + co
        s_default = [sumdun, "fuse", ms_tif, pan_tif, out, "--method", "bt-h", "--sensor",
                     "wv3", "-q"]
        cases = {
            "start-up: sumdun methods": [sumdun, "methods"],
            "sumdun fuse --method bt-h (default: tiled DEFLATE)": s_default,
            f"{g_name} (default: uncompressed)": g_plain,
            "sumdun fuse --method bt-h --co COMPRESS=NONE": s_default + ["--co", "COMPRESS=NONE"],
            f"{g_name} -co COMPRESS=DEFLATE -co TILED=YES": g_same,
        }
        best = {k: (float("inf"), 0.0) for k in cases}
        for _ in range(repeats):
            for k, cmd in cases.items():
                wall, rss, _ = measure(cmd)
                if os.path.exists(out):
                    os.remove(out)
                best[k] = min(best[k], (wall, rss))
    return [(k, *v) for k, v in best.items()]


def print_end_to_end(rows) -> None:
    print(f"\nend to end, WorldView-3 scene (PAN 3340 x 3340, 8 bands), {os.cpu_count()} CPUs, "
          "best of 5, run alternately")
    print(f"{'command':58} {'wall s':>7} {'peak RSS MiB':>13}")
    for name, sec, rss in rows:
        print(f"{name:58} {sec:7.2f} {rss:13.0f}")
    t = {n: s for n, s, _ in rows}
    names = list(t)
    print(f"ratio sumdun / GDAL, each with its default output: {t[names[1]] / t[names[2]]:.2f}; "
          f"with the same (DEFLATE) output: {t[names[1]] / t[names[4]]:.2f}; both "
          f"uncompressed: {t[names[3]] / t[names[2]]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--e2e":
        print_end_to_end(end_to_end())
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        run_one(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "--only":
        main(sys.argv[2].split(","))
    else:
        main()
