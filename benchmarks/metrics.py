"""Time every quality index on a 1024 x 1024 x 8 image (11-bit) against a straightforward loop
implementation of the same definition (tests/toolbox_reference.py: a line-by-line transcription
of the MATLAB toolbox with per-block and per-band loops, vectorised over the pixels of a block as
the MATLAB code is; MATLAB's imresize, which scipy lacks, is sumdun's in both columns).

Run: python benchmarks/metrics.py [--only Q2n,HQNR]   (prints a table; target: Q2n and HQNR
>= 20x faster)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import toolbox_reference as R  # noqa: E402

from sumdun import metrics as M  # noqa: E402
from sumdun.degrade import imresize, interp23tap, mtf_kernels  # noqa: E402


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(size: int = 1024, bands: int = 8, only: set | None = None) -> None:
    rng = np.random.default_rng(0)
    h = size // 4
    ms = np.clip(rng.normal(600, 150, (bands, h, h)), 0, 2047)
    gt = np.clip(interp23tap(ms) + rng.normal(0, 40, (bands, size, size)), 0, 2047)
    fused = np.clip(gt + rng.normal(0, 20, gt.shape), 0, 2047)
    pan = np.clip(gt.mean(0, keepdims=True) + rng.normal(0, 10, (1, size, size)), 0, 2047)
    G, Fu = R.hwc(gt), R.hwc(fused)
    msexp = interp23tap(ms)

    def loop_hqnr():
        """HQNR.m literally: MTF.m (direct 41 x 41 imfilter), interp23tap.m, q2n.m, D_s.m."""
        exp = R.interp23tap(R.hwc(ms), 4)
        dl = 1 - R.q2n(exp, R.MTF(Fu, mtf_kernels("wv3")))
        pf = R.interp23tap(imresize(pan, 0.25)[0][:, :, None], 4)[:, :, 0]
        ds = R.D_s(Fu, exp, pan[0], pf)
        return (1 - dl) * (1 - ds)

    rows = [
        ("Q2n", lambda: M.q2n(fused, gt), lambda: R.q2n(G, Fu)),
        ("Q_avg", lambda: M.q_avg(fused, gt), lambda: R.Q(G, Fu)),
        ("SAM", lambda: M.sam(fused, gt), lambda: R.SAM(G, Fu)),
        ("ERGAS", lambda: M.ergas(fused, gt), lambda: R.ERGAS(G, Fu, 4)),
        ("SCC", lambda: M.scc(fused, gt), lambda: R.SCC(Fu, G)),
        ("D_S", lambda: M.d_s(fused, ms, pan),
         lambda: R.D_s(Fu, R.hwc(msexp), pan[0], interp23tap(imresize(pan, 0.25))[0])),
        ("HQNR", lambda: M.hqnr(fused, ms, pan, "wv3"), loop_hqnr),
    ]
    print(f"quality indices on {size} x {size} x {bands}, float64, torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'index':8} {'sumdun s':>10} {'loop s':>10} {'speed-up':>9} {'|diff|':>9}")
    for name, ours, loop in rows:
        if only and name not in only:
            continue
        t_ours, v_ours = timed(ours, repeat=5)
        t_loop, v_loop = timed(loop, repeat=3 if name != "Q_avg" else 1)  # best of n: the
        # machine is shared and noisy; the loop's first run also pays for warm-up
        print(f"{name:8} {t_ours:10.3f} {t_loop:10.3f} {t_loop / t_ours:8.1f}x "
              f"{abs(v_ours - v_loop):9.1e}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None, help="comma-separated indices, e.g. Q2n,HQNR")
    a = ap.parse_args()
    main(only=set(a.only.split(",")) if a.only else None)
