#!/usr/bin/env bash
# KgCoOp base-to-new, step 1: train on the base classes of DATASET.
# Usage: scripts/kgcoop/base2new_train.sh DATASET SEED [CFG]
#   DATASET  a configs/datasets/<DATASET>.yaml stem (e.g. eurosat)
#   CFG      configs/trainers/KgCoOp/<CFG>.yaml, default vit_b16_ep100_ctxv1 (KgCoOp paper setting (W 8.0 is in the config))
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/KgCoOp/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_train KgCoOp KgCoOp "${3:-vit_b16_ep100_ctxv1}" "$1" "$2"
