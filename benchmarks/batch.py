"""Batch fusion on Dask: throughput and peak memory per worker for 1 and 2 local workers,
against the same scenes fused one after another by ``sumdun fuse`` (one process per scene).

Generated 4-band uint16 scenes (seeded), PAN ``--size`` pixels a side, plus one scene of
twice the side that ``fuse-batch`` splits into strips (``split_rows=2``: two strips
of 2 tile rows). The three runs alternate ``--repeat``
times on the same scenes; the table keeps each run's best time. Peak memory is each worker
process's maximum resident set (``ru_maxrss``) after the batch.

Run: python benchmarks/batch.py [--scenes 6] [--size 1024] [--method bt-h] [--repeat 2]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def make_scenes(root: Path, n: int, size: int) -> float:
    """``n`` pairs of PAN ``size`` px and one of ``2 * size``; returns the PAN Mpx in all."""
    from synthetic import scene, write_pair

    total = 0
    for k in range(n + 1):
        side = 2 * size if k == n else size
        _, ms, pan = scene(seed=k, bands=4, h=side // 4, w=side // 4)
        a, b = write_pair(root / f"s{k}", ms, pan)
        a.rename(a.with_name(f"scene{k}_MS.tif"))
        b.rename(b.with_name(f"scene{k}_PAN.tif"))
        total += side * side
    return total / 1e6


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def batch(src: Path, out: Path, workers: int, method: str) -> tuple[float, float]:
    """Seconds (cluster start-up included) and the largest worker peak (MiB)."""
    import distributed

    from sumdun.batch import fuse_batch

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        rep = fuse_batch(src, out, client=client, method=method, sensor="wv3",
                         progress=False, split_rows=2)
        seconds = time.perf_counter() - t0
        peak = max(client.run(_peak_mib).values())
    assert rep["totals"]["failed"] == 0, rep
    return seconds, peak


def one_by_one(src: Path, out: Path, method: str) -> tuple[float, float]:
    """``sumdun fuse`` per scene, one after another (each a new process): seconds and the
    largest process peak (MiB)."""
    import os

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    exe = str(Path(sys.executable).with_name("sumdun"))
    peak = 0.0
    t0 = time.perf_counter()
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        ms = next(folder.glob("*_MS.tif"))
        pan = next(folder.glob("*_PAN.tif"))
        proc = subprocess.Popen([exe, "fuse", str(ms), str(pan),
                                 str(out / f"{folder.name}.tif"), "--method", method,
                                 "--sensor", "wv3", "-q"])
        _, status, usage = os.wait4(proc.pid, 0)
        if status:
            raise RuntimeError(f"sumdun fuse failed on {folder}")
        peak = max(peak, usage.ru_maxrss / 1024)
    return time.perf_counter() - t0, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--method", default="bt-h")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from sumdun.threads import _cores

    root = Path(tempfile.mkdtemp(prefix="sumdun-batch-bench-"))
    try:
        mpx = make_scenes(root / "in", args.scenes, args.size)
        runs = {"sumdun fuse, one by one": [], "fuse-batch, 1 worker": [],
                "fuse-batch, 2 workers": []}
        peaks = {k: 0.0 for k in runs}
        for _ in range(args.repeat):
            s, p = one_by_one(root / "in", root / "seq", args.method)
            runs["sumdun fuse, one by one"].append(s)
            peaks["sumdun fuse, one by one"] = max(peaks["sumdun fuse, one by one"], p)
            for w in (1, 2):
                s, p = batch(root / "in", root / f"b{w}", w, args.method)
                runs[f"fuse-batch, {w} worker{'s' * (w > 1)}"].append(s)
                key = f"fuse-batch, {w} worker{'s' * (w > 1)}"
                peaks[key] = max(peaks[key], p)
        print(f"{args.scenes} scenes of PAN {args.size}^2 + 1 of {2 * args.size}^2 (split), "
              f"4 bands, {args.method}, {mpx:.1f} PAN Mpx, {_cores()} cores, best of "
              f"{args.repeat}")
        print(f"| run | s | PAN Mpx/s | peak MiB per process | vs one by one |")
        print("|---|---|---|---|---|")
        base = min(runs["sumdun fuse, one by one"])
        for name, times in runs.items():
            s = min(times)
            peak = f"{peaks[name]:.0f}" if peaks[name] else "-"
            print(f"| {name} | {s:.1f} | {mpx / s:.3f} | {peak} | {base / s:.2f}x |")
        one, two = min(runs["fuse-batch, 1 worker"]), min(runs["fuse-batch, 2 workers"])
        print(f"\n2 workers / 1 worker throughput: {one / two:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
