"""Install a checkpoint of the unified recipe (``scripts/train_unified.py``) as the shipped
``sumdun_small`` weights: its model.safetensors and log.csv, and a meta.json with the shipped
fusion options (``detail_gain``) and the provenance of every data source and its licence.

Run: python scripts/package_unified.py [--run runs/sumdun_unified_nometa] [--selection TEXT]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from datetime import date
from pathlib import Path

from sumdun.engine.recipe import SHIPPED

DEST = Path("src/sumdun/weights/sumdun_small")

TRAINED_ON = {
    "dgsamples": "DigitalGlobe sample imagery from the PyPI package dgsamples 1.1.2 "
                 "(wv2_longmont_1k, wv3_longmont_1k; licensed for use, not for redistribution): "
                 "train stripes only, 8 bands and their B,G,R,NIR subsets",
    "pairmax": "PAirMax benchmark scenes W2_Miam_Mix, W2_Miam_Urb (WorldView-2), W3_Muni_Mix, "
               "W3_Muni_Nat, W3_Muni_Urb (WorldView-3), their RR pairs degraded once more by "
               "Wald's protocol, every row: DigitalGlobe product terms (EDUCATIONAL.TXT, local "
               "use only; not redistributed)",
    "spacenet": "SpaceNet WorldView-3 Shanghai (AOI 4), CC BY-SA 4.0 (its MS about 0.45 MS "
                "pixels off the PAN vertically, used as it is), and SpaceNet 6 area WorldView-2 "
                "Rotterdam tiles 1-3 (4 bands; imagery licence not stated, SpaceNet data CC "
                "BY-SA 4.0), every row",
    "not_used": "Sentinel-2 and Landsat-8 (ratio 2: the network's operators are ratio 4)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="runs/sumdun_unified_nometa")
    ap.add_argument("--selection", default="", help="how the fusion options were chosen")
    args = ap.parse_args()
    best = Path(args.run) / "best"
    meta = json.loads((best / "meta.json").read_text())
    meta["model_config"]["detail_gain"] = SHIPPED["detail_gain"]
    budget = meta.get("budget", {})
    meta["provenance"] = {
        "trained_on": TRAINED_ON,
        "data": "sumdun.engine.recipe.sensor_data per sensor: dgsamples 128-pixel patches, "
                "stride 32 (train / val / test stripes of the rows; val chooses the epoch); "
                "extra scenes 64-pixel patches, stride 32, all rows",
        "prompts": "stats describer (stats-2) embedded by bge-small, per patch; half the "
                   "training samples (prompt_meta_dropout 0.5) get the description of their pair "
                   "without the metadata (sun, view, GSD), as bare arrays are described",
        "command": f"python scripts/train_unified.py --steps {SHIPPED['steps']} (the recipe "
                   "of sumdun.engine.recipe on every ratio-4 sensor, the same as "
                   "benchmarks/generalization.py --loso trains without one sensor), then "
                   "python scripts/package_unified.py",
        "hardware": budget.get("hardware", "") + ", float32, torch CPU",
        "budget": budget,
        "best_epoch": meta.get("epoch"),
        "packaged": f"{date.today().isoformat()} (step 9: the unified recipe, from scratch)",
        "step9_selection": args.selection,
    }
    with tempfile.TemporaryDirectory(dir=DEST.parent) as tmp:
        tmp = Path(tmp)
        shutil.copy2(best / "model.safetensors", tmp / "model.safetensors")
        shutil.copy2(Path(args.run) / "log.csv", tmp / "log.csv")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "train_config.yaml").write_text(
            "# sumdun_small, step 9: the unified recipe (sumdun.engine.recipe), written by "
            "scripts/package_unified.py\n# Run: python scripts/train_unified.py\n"
            + json.dumps(meta["train_config"], indent=2) + "\n")
        for f in tmp.iterdir():
            f.replace(DEST / f.name)
    print(f"installed {best} as {DEST}")


if __name__ == "__main__":
    main()
