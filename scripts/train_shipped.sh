#!/usr/bin/env bash
# How the shipped sumdun_small weights are made (run from the repository root, in .venv; needs
# the dgsamples package and ../shared/data, or SUMDUN_SHARED_DATA):
# step 9 (shipped since 2026-12-03) trains the unified recipe of sumdun.engine.recipe from
# scratch on every real ratio-4 scene of WorldView-2 and WorldView-3 (dgsamples train stripes,
# PAirMax Miami and Munich, SpaceNet Shanghai and Rotterdam; stats-2 prompts embedded by
# bge-small, half of them described without the pairs' metadata): the same recipe that
# `benchmarks/generalization.py --loso` trains without one sensor. About 50 minutes on 2 cores
# (18 epochs, log.csv). Then it installs the best checkpoint with detail_gain: 0.5 and the provenance of every data source (scripts/package_unified.py).
# Steps 1-8 (dgsamples only, five fine-tunes from interp23tap / BT-H starts) are in the git
# history of this script (commit a024f57).
set -euo pipefail
PY=${PY:-.venv/bin/python}
$PY scripts/train_unified.py "$@"
$PY scripts/package_unified.py
