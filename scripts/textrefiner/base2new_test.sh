#!/usr/bin/env bash
# TextRefiner base-to-new, step 2: evaluate the base-trained run on the new classes of DATASET.
# Usage: scripts/textrefiner/base2new_test.sh DATASET SEED [CFG]   (same arguments and HOST as base2new_train.sh)
# Loads the checkpoint named by train_base/.../prompt_learner/checkpoint (no fixed epoch).
# Output: $OUTPUT/base2new/test_new/DATASET/shots_$SHOTS/<TextRefiner | HOST+TextRefiner>/CFG/seedSEED
# Environment: HOST (the trainer TextRefiner refines, default TextRefiner = CoOp host; also CoOp,
#              KgCoOp, CoCoOp, DPT, VLP: their runs go to <HOST>+TextRefiner with TEXTREFINER.ENABLED True),
#              DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/host.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_test "${HOST_TRAINER}" "${HOST_TRAINER}" "${3:-${HOST_CFG}}" "$1" "$2"
