#!/usr/bin/env bash
# DPT / VLP / VPT base-to-new, step 1: train on the base classes of DATASET.
# Usage: scripts/dpt/base2new_train.sh DATASET SEED [CFG] [TRAINER]
#   DATASET  a configs/datasets/<DATASET>.yaml stem (e.g. eurosat)
#   CFG      configs/trainers/<TRAINER>/<CFG>.yaml, default vit_b16 (the authors' run values, not tuned for base-to-new)
#   TRAINER  DPT (default), VLP or VPT
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/TRAINER/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG] [TRAINER]"
trainer="${4:-DPT}"
base2new_train "${trainer}" "${trainer}" "${3:-vit_b16}" "$1" "$2"
