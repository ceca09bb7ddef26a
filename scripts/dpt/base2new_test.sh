#!/usr/bin/env bash
# DPT / VLP / VPT base-to-new, step 2: evaluate the base-trained run on the new classes of DATASET.
# Usage: scripts/dpt/base2new_test.sh DATASET SEED [CFG] [TRAINER]   (same arguments as base2new_train.sh)
# Loads the last checkpoint of the training run (the auxiliary classifiers and class-name buffers are
# rebuilt for the new classes, everything else is loaded strictly).
# Output: $OUTPUT/base2new/test_new/DATASET/shots_$SHOTS/TRAINER/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG] [TRAINER]"
trainer="${4:-DPT}"
base2new_test "${trainer}" "${trainer}" "${3:-vit_b16}" "$1" "$2"
