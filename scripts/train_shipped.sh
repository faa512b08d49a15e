#!/usr/bin/env bash
# How the shipped sumdun_small weights are made (run from the repository root, in .venv):
# 1. reduced-resolution data from the dgsamples WorldView-2/3 scenes, 8-band and 4-band subsets
# 2. stats descriptions + bge-small embeddings for every training and validation patch
# 3. training (configs/sumdun_small_dgsamples.yaml)
set -euo pipefail
PY=${PY:-.venv/bin/python}
SUMDUN=${SUMDUN:-.venv/bin/sumdun}
$SUMDUN build-dataset data/dgsamples --samples wv2,wv3 --patch 128 --stride 32
for f in data/dgsamples/*_train.h5 data/dgsamples/*_val.h5 data/dgsamples/*_test.h5; do
  $SUMDUN prompts "$f" --describer stats --encoder bge-small
done
$SUMDUN train --config configs/sumdun_small_dgsamples.yaml "$@"
