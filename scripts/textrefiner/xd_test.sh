#!/usr/bin/env bash
# TextRefiner cross-dataset / domain generalisation, step 2: evaluate the xd_train.sh model (its last
# checkpoint, as the pointer file names it) on all classes of DATASET (another dataset, or
# imagenetv2 / imagenet_sketch / imagenet_a / imagenet_r).
# Usage: scripts/textrefiner/xd_test.sh DATASET SEED [CFG]   (CFG default as in base2new_train.sh; source $XD_SOURCE, default imagenet)
# Output: $OUTPUT/evaluation/<TextRefiner | HOST+TextRefiner>/CFG_<SHOTS>shots/DATASET/seedSEED
# Environment: HOST (the trainer TextRefiner refines, default TextRefiner = CoOp host; also CoOp,
#              KgCoOp, CoCoOp, DPT, VLP: their runs go to <HOST>+TextRefiner with TEXTREFINER.ENABLED True),
#              DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/host.sh"
usage 2 "$#" "DATASET SEED [CFG]"
xd_test "${HOST_TRAINER}" "${3:-${HOST_CFG}}" "${XD_SOURCE:-imagenet}" "$1" "$2"
