"""Reduced-resolution quality of every method on the held-out test stripes of the dgsamples
scenes (8-band and 4-band subsets): mean Q2n, SAM (degrees), ERGAS, PSNR (dB, 11-bit range)
over the test patches, one table per run.

Data: sumdun build-dataset data/dgsamples --samples wv2,wv3   (scripts/train_shipped.sh)
Run:  python benchmarks/quality.py [--data data/dgsamples] [--weights sumdun_small|CHECKPOINT]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sumdun.fusion import fuse, list_methods
from sumdun.io import read_h5
from sumdun.metrics import ergas, psnr, q2n, sam

SETS = ("wv3", "wv3-4band", "wv2", "wv2-4band")
KEYS = ("Q2n", "SAM", "ERGAS", "PSNR")
HIGHER = {"Q2n": True, "SAM": False, "ERGAS": False, "PSNR": True}


def evaluate(data: Path, weights: str) -> dict:
    results = {}
    methods = list(list_methods())
    for name in SETS:
        path = data / f"{name}_test.h5"
        if not path.exists():
            continue
        d = read_h5(path)
        sensor = d["attrs"]["sensor"]
        gt, ms, pan = d["gt"].astype(np.float64), d["ms"].astype(np.float64), d["pan"].astype(np.float64)
        for m in methods:
            opts = {"weights": weights} if m == "sumdun" else {}
            t0 = time.perf_counter()
            try:
                f = np.stack([fuse(ms[i], pan[i], m, sensor=sensor, **opts) for i in range(len(ms))])
            except Exception as err:  # noqa: BLE001 - report and go on
                print(f"{m} on {name}: {err}")
                continue
            f = np.clip(f, 0, 2047)
            results[(name, m)] = {"Q2n": float(np.mean(q2n(f, gt))),
                                  "SAM": float(np.mean(sam(f, gt))),
                                  "ERGAS": float(np.mean(ergas(f, gt))),
                                  "PSNR": float(np.mean(psnr(f, gt, 2047.0))),
                                  "n": len(f), "s": time.perf_counter() - t0}
    return results


def table(results: dict) -> str:
    lines = []
    for name in SETS:
        rows = {m: r for (n, m), r in results.items() if n == name}
        if not rows:
            continue
        n = next(iter(rows.values()))["n"]
        lines += [f"\n**{name}** ({n} test patches, GT 128 x 128)\n",
                  "| method | " + " | ".join(KEYS) + " |", "|---|" + "---:|" * len(KEYS)]
        for m, r in rows.items():
            cells = []
            for k in KEYS:
                vals = [x[k] for x in rows.values()]
                best = max(vals) if HIGHER[k] else min(vals)
                cells.append(f"**{r[k]:.4f}**" if r[k] == best else f"{r[k]:.4f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        if "sumdun" in rows:
            beats = all((rows["sumdun"][k] > max(r[k] for m, r in rows.items() if m != "sumdun"))
                        if HIGHER[k] else
                        (rows["sumdun"][k] < min(r[k] for m, r in rows.items() if m != "sumdun"))
                        for k in KEYS)
            lines.append(f"\nsumdun beats every classical method on {', '.join(KEYS)}: "
                         f"{'yes' if beats else 'no'}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/dgsamples")
    ap.add_argument("--weights", default="sumdun_small")
    args = ap.parse_args()
    if "sumdun" not in list_methods():
        print("no shipped SUM-DUN weights: the table has the classical methods only")
    print(table(evaluate(Path(args.data), args.weights)))


if __name__ == "__main__":
    main()
