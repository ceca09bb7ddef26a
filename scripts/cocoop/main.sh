#!/usr/bin/env bash
# CoCoOp few-shot learning on all classes of DATASET.
# Usage: scripts/cocoop/main.sh DATASET SEED [CFG]   (CFG default vit_b16_c4_ep10_batch1_ctxv1)
# Output: $OUTPUT/DATASET/CoCoOp/CFG_<SHOTS>shots/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
cfg="${3:-vit_b16_c4_ep10_batch1_ctxv1}"
fewshot_train CoCoOp "${cfg}" "$1" "$2" "$(fewshot_dir CoCoOp "${cfg}" "$1" "$2")"
