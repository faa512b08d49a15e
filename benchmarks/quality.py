"""Reduced-resolution quality of every registered method on the held-out test stripes of the
dgsamples scenes (8-band and 4-band subsets): mean Q2n, SAM (degrees), ERGAS, PSNR (dB, 11-bit
range) over the test patches, in one run, and whether SUM-DUN beats every classical method.

Data: sumdun build-dataset data/dgsamples --samples wv2,wv3   (scripts/train_shipped.sh)
Run:  python benchmarks/quality.py [--data data/dgsamples] [--weights CHECKPOINT_FOLDER]
(``sumdun evaluate`` gives the full table with Q_avg, SCC and the full-resolution indices.)
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sumdun.evaluation import evaluate, to_markdown
from sumdun.evaluation.tables import HIGHER_IS_BETTER
from sumdun.fusion import get_method, list_methods

SETS = ("wv3", "wv3-4band", "wv2", "wv2-4band")
KEYS = ("Q2n", "SAM", "ERGAS", "PSNR")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/dgsamples")
    ap.add_argument("--weights", default=None, help="a checkpoint folder instead of the shipped")
    args = ap.parse_args()
    methods = [m for m in list_methods() if get_method(m).family == "classical" or m == "sumdun"]
    if "sumdun" not in methods:
        print("no shipped SUM-DUN weights: the table has the classical methods only")
    if args.weights:
        methods = [args.weights if m == "sumdun" else m for m in methods]
    files = [Path(args.data) / f"{s}_test.h5" for s in SETS]
    with tempfile.TemporaryDirectory() as tmp:
        res = evaluate(methods, data=[f for f in files if f.exists()], out=tmp, progress=False)
    print(to_markdown(res["rr"], KEYS))
    neural = Path(args.weights).name if args.weights else "sumdun"
    for s, table in res["rr"].items():
        if neural not in table:
            continue
        ours = table[neural]
        others = {m: v for m, v in table.items() if m != neural}
        beats = all((ours[k][0] > max(v[k][0] for v in others.values())) if HIGHER_IS_BETTER[k]
                    else (ours[k][0] < min(v[k][0] for v in others.values())) for k in KEYS)
        print(f"{s}: SUM-DUN beats every classical method on {', '.join(KEYS)}: "
              f"{'yes' if beats else 'no'}")


if __name__ == "__main__":
    main()
