#!/usr/bin/env bash
# CoOp base-to-new, step 2: evaluate the base-trained run on the new classes of DATASET.
# Usage: scripts/coop/base2new_test.sh DATASET SEED [CFG]   (same arguments as base2new_train.sh)
# Loads the checkpoint named by train_base/.../prompt_learner/checkpoint (no fixed epoch).
# Output: $OUTPUT/base2new/test_new/DATASET/shots_$SHOTS/CoOp/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_test CoOp CoOp "${3:-vit_b16_ctxv1}" "$1" "$2"
