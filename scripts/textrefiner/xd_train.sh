#!/usr/bin/env bash
# TextRefiner cross-dataset / domain generalisation, step 1: few-shot training on all classes of
# the source dataset ($XD_SOURCE, default imagenet).
# Usage: scripts/textrefiner/xd_train.sh SEED [CFG]   (CFG default as in base2new_train.sh)
# Output: $OUTPUT/<source>/<TextRefiner | HOST+TextRefiner>/CFG_<SHOTS>shots/seedSEED
# Environment: HOST (the trainer TextRefiner refines, default TextRefiner = CoOp host; also CoOp,
#              KgCoOp, CoCoOp, DPT, VLP: their runs go to <HOST>+TextRefiner with TEXTREFINER.ENABLED True),
#              DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/host.sh"
usage 1 "$#" "SEED [CFG]"
XD_SOURCE="${XD_SOURCE:-imagenet}"
cfg="${2:-${HOST_CFG}}"
fewshot_train "${HOST_TRAINER}" "${cfg}" "${XD_SOURCE}" "$1" "$(fewshot_dir "${HOST_TRAINER}" "${cfg}" "${XD_SOURCE}" "$1")"
