#!/usr/bin/env bash
# Zero-shot CLIP on all classes of DATASET (nothing is trained).
# Usage: scripts/zsclip/zeroshot.sh DATASET CFG   (CFG: configs/trainers/CoOp/<CFG>.yaml, e.g. vit_b16, rn50)
# Output: $OUTPUT/ZeroshotCLIP/CFG/DATASET
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET CFG"
dataset_cfg="$(dataset_config "$1")"
trainer_cfg="$(trainer_config CoOp "$2")"
run_once "${OUTPUT}/ZeroshotCLIP/$2/$1" --root "${DATA}" --trainer ZeroshotCLIP \
    --dataset-config-file "${dataset_cfg}" --config-file "${trainer_cfg}" --eval-only --
