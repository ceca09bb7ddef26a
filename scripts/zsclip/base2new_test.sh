#!/usr/bin/env bash
# Zero-shot CLIP in the base-to-new protocol: evaluate on the new classes, with --eval-only.
# Same interface and tree as the prompt methods, so a sweep can produce a zero-shot row.
# Usage: scripts/zsclip/base2new_test.sh DATASET SEED [CFG]   (CFG: configs/trainers/CoOp/<CFG>.yaml, default vit_b16)
# Output: $OUTPUT/base2new/test_new/DATASET/shots_$SHOTS/ZeroshotCLIP/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_test ZeroshotCLIP CoOp "${3:-vit_b16}" "$1" "$2"
