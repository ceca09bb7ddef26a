#!/usr/bin/env bash
# CoCoOp cross-dataset / domain generalisation, step 2: evaluate the xd_train.sh model on
# all classes of DATASET (another dataset, or imagenetv2 / imagenet_sketch / imagenet_a / imagenet_r).
# Usage: scripts/cocoop/xd_test.sh DATASET SEED [CFG]   (CFG default vit_b16_c4_ep10_batch1_ctxv1; source $XD_SOURCE, default imagenet)
# Output: $OUTPUT/evaluation/CoCoOp/CFG_<SHOTS>shots/DATASET/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
xd_test CoCoOp "${3:-vit_b16_c4_ep10_batch1_ctxv1}" "${XD_SOURCE:-imagenet}" "$1" "$2"
