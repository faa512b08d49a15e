#!/usr/bin/env bash
# The deep baselines' shipped weights (issue #20), all under one budget on this 2-core CPU:
# one epoch of the dgsamples training patches of each band count (configs/baselines/*.yaml),
# then each best checkpoint is installed as src/sumdun/weights/<name>_<bands>b. Also trains
# sumdun_small from scratch under the same budget (the fair row of the comparison), installed as
# src/sumdun/weights/sumdun_small_same_budget.
# Needs the data of scripts/train_shipped.sh (sumdun build-dataset + sumdun prompts).
# Run from the repository root, in .venv:  bash scripts/train_baselines.sh [name ...]
set -euo pipefail
SUMDUN=${SUMDUN:-.venv/bin/sumdun}
NAMES=${*:-pnn pannet fusionnet awfln tmdiff wfanet fusionmamba panmamba}
for name in $NAMES; do
  for bands in 8 4; do
    out=runs/baselines/${name}_${bands}b
    if [ ! -f "$out/best/meta.json" ]; then
      /usr/bin/time -f "$name ${bands}b: %e s" $SUMDUN train -q --threads "${THREADS:-2}" \
        --config "configs/baselines/${name}_${bands}b.yaml" 2>&1 | tail -n 3
    fi
    rm -rf "src/sumdun/weights/${name}_${bands}b"
    mkdir -p "src/sumdun/weights/${name}_${bands}b"
    cp "$out/best/model.safetensors" "$out/best/meta.json" "src/sumdun/weights/${name}_${bands}b/"
  done
done
if [ -z "${*:-}" ]; then
  out=runs/baselines/sumdun_small_same_budget
  if [ ! -f "$out/best/meta.json" ]; then
    /usr/bin/time -f "sumdun_small_same_budget: %e s" $SUMDUN train -q --threads "${THREADS:-2}" \
      --config configs/baselines/sumdun_small_same_budget.yaml 2>&1 | tail -n 3
  fi
  # installed beside the shipped weights so that `sumdun evaluate` can name it:
  # --methods sumdun:sumdun_small_same_budget
  rm -rf src/sumdun/weights/sumdun_small_same_budget
  mkdir -p src/sumdun/weights/sumdun_small_same_budget
  cp "$out/best/model.safetensors" "$out/best/meta.json" src/sumdun/weights/sumdun_small_same_budget/
fi
