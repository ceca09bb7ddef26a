#!/usr/bin/env bash
# CoOp base-to-new, step 1: train on the base classes of DATASET.
# Usage: scripts/coop/base2new_train.sh DATASET SEED [CFG]
#   DATASET  a configs/datasets/<DATASET>.yaml stem (e.g. eurosat)
#   CFG      configs/trainers/CoOp/<CFG>.yaml, default vit_b16_ctxv1 (CoCoOp paper's CoOp baseline (M=4 'a photo of a', 200 epochs; use vit_b16_ep50_ctxv1 for ImageNet))
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/CoOp/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_train CoOp CoOp "${3:-vit_b16_ctxv1}" "$1" "$2"
