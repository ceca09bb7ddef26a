#!/usr/bin/env bash
# CoCoOp base-to-new, step 1: train on the base classes of DATASET.
# Usage: scripts/cocoop/base2new_train.sh DATASET SEED [CFG]
#   DATASET  a configs/datasets/<DATASET>.yaml stem (e.g. eurosat)
#   CFG      configs/trainers/CoCoOp/<CFG>.yaml, default vit_b16_c4_ep10_batch1_ctxv1 (CoCoOp paper setting)
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/CoCoOp/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_train CoCoOp CoCoOp "${3:-vit_b16_c4_ep10_batch1_ctxv1}" "$1" "$2"
