"""Train the shipped ``sumdun_small`` weights (step 9): the unified recipe
(``sumdun.engine.recipe``) on every real ratio-4 scene of every sensor (dgsamples WorldView-2
and WorldView-3 train stripes, PAirMax Miami and Munich, SpaceNet Shanghai and Rotterdam), the
same recipe that ``benchmarks/generalization.py --loso`` trains without one sensor.

Needs ``../shared/data`` (or SUMDUN_SHARED_DATA) and the dgsamples package. Resumable.
Run: python scripts/train_unified.py [--steps 2400] [--data runs/loso] [--out runs/sumdun_unified_nometa]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sumdun.engine.recipe import RECIPE_SENSORS, SHIPPED, train_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=SHIPPED["steps"], help="training batches of 8")
    ap.add_argument("--data", default="runs/loso", help="per-sensor training data (built once, "
                    "shared with the leave-one-sensor-out folds)")
    ap.add_argument("--out", default="runs/sumdun_unified_nometa")
    args = ap.parse_args()
    from sumdun.io.extra import shared_data_root

    if shared_data_root() is None:
        raise SystemExit("../shared/data is not on this machine (set SUMDUN_SHARED_DATA)")
    print(train_recipe(RECIPE_SENSORS, Path(args.data), Path(args.out), args.steps))


if __name__ == "__main__":
    main()
