"""The comparison of issue #20 in one command: every classical method, the eight deep baselines,
the shipped SUM-DUN and SUM-DUN trained under the baselines' budget, on the held-out test
stripes of the dgsamples scenes (reduced resolution: WorldView-3 and WorldView-2, 8 bands and
their 4-band subsets; full resolution: the 8-band `_test_fr` patches).

Data: sumdun build-dataset data/dgsamples --samples wv2,wv3   (scripts/train_shipped.sh)
Run:  python benchmarks/baselines.py [--data data/dgsamples] [--out eval/baselines]

It runs ``sumdun evaluate`` (resumable: per-sample results stay in OUT/samples.jsonl; the full
tables are OUT/table.md) and prints one row per method: Q2n on each set, mean PSNR (dB) and
SAM (degrees) over the four sets, mean HQNR over the full-resolution sets, the rank by mean
Q2n, and the training budget of each network from its checkpoint's meta.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sumdun.evaluation import evaluate
from sumdun.evaluation.runner import expand_methods, method_spec, training_budgets

RR = ("wv3", "wv3-4band", "wv2", "wv2-4band")
FR = ("wv3", "wv2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/dgsamples")
    ap.add_argument("--out", default="eval/baselines")
    args = ap.parse_args()
    d = Path(args.data)
    methods = expand_methods(["classical", "neural", "sumdun:sumdun_small_same_budget"])
    res = evaluate(methods, data=[d / f"{s}_test.h5" for s in RR],
                   full_resolution=[d / f"{s}_test_fr.h5" for s in FR], out=args.out,
                   progress=sys.stderr.isatty())
    if res["failures"]:
        print(f"{len(res['failures'])} failed samples: see {args.out}/table.md")
    labels = [method_spec(m)[0] for m in methods]
    budgets = {line.split(":", 1)[0][2:]: line.split(":", 1)[1].strip()
               for line in training_budgets([method_spec(m) for m in methods])}
    rows = []
    for label in labels:
        q = [res["rr"][s][label]["Q2n"][0] for s in RR]
        psnr = np.mean([res["rr"][s][label]["PSNR"][0] for s in RR])
        sam = np.mean([res["rr"][s][label]["SAM"][0] for s in RR])
        hqnr = np.mean([res["fr"][f"{s} (full res.)"][label]["HQNR"][0] for s in FR])
        rows.append((label, q, float(np.mean(q)), psnr, sam, hqnr))
    rows.sort(key=lambda r: -r[2])
    print("| rank | method | " + " | ".join(f"Q2n {s}" for s in RR)
          + " | mean Q2n | PSNR | SAM | HQNR | training |")
    print("|---:|---|" + "---:|" * (len(RR) + 4) + "---|")
    for k, (label, q, mq, psnr, sam, hqnr) in enumerate(rows, 1):
        print(f"| {k} | {label} | " + " | ".join(f"{v:.4f}" for v in q)
              + f" | {mq:.4f} | {psnr:.2f} | {sam:.3f} | {hqnr:.4f} | "
              + budgets.get(label, "none (classical)") + " |")
    for name in ("sumdun", "sumdun_small_same_budget"):
        rank = [r[0] for r in rows].index(name) + 1
        print(f"{name}: rank {rank} of {len(rows)} by mean Q2n")


if __name__ == "__main__":
    main()
