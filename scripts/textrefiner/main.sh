#!/usr/bin/env bash
# TextRefiner few-shot learning on all classes of DATASET.
# Usage: scripts/textrefiner/main.sh DATASET SEED [CFG]   (CFG default as in base2new_train.sh)
# Output: $OUTPUT/DATASET/<TextRefiner | HOST+TextRefiner>/CFG_<SHOTS>shots/seedSEED
# Environment: HOST (the trainer TextRefiner refines, default TextRefiner = CoOp host; also CoOp,
#              KgCoOp, CoCoOp, DPT, VLP: their runs go to <HOST>+TextRefiner with TEXTREFINER.ENABLED True),
#              DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/host.sh"
usage 2 "$#" "DATASET SEED [CFG]"
cfg="${3:-${HOST_CFG}}"
fewshot_train "${HOST_TRAINER}" "${cfg}" "$1" "$2" "$(fewshot_dir "${HOST_TRAINER}" "${cfg}" "$1" "$2")"
