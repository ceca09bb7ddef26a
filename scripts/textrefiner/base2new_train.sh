#!/usr/bin/env bash
# TextRefiner base-to-new, step 1: train on the base classes of DATASET.
# Usage: scripts/textrefiner/base2new_train.sh DATASET SEED [CFG]
#   DATASET  a configs/datasets/<DATASET>.yaml stem (e.g. eurosat)
#   CFG      configs/trainers/<HOST>/<CFG>.yaml, default vit_b16_ep10_ctxv1 for TextRefiner (the paper
#            setting; also vit_b16_ep10_lr1e-3_ctxv1, vit_b16_ep10_lr8e-4_ctxv1), else the host's default
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/<TextRefiner | HOST+TextRefiner>/CFG/seedSEED
# Environment: HOST (the trainer TextRefiner refines, default TextRefiner = CoOp host; also CoOp,
#              KgCoOp, CoCoOp, DPT, VLP: their runs go to <HOST>+TextRefiner with TEXTREFINER.ENABLED True),
#              DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/host.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_train "${HOST_TRAINER}" "${HOST_TRAINER}" "${3:-${HOST_CFG}}" "$1" "$2"
