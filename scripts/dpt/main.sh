#!/usr/bin/env bash
# DPT / VLP / VPT few-shot learning on all classes of DATASET (the paper's protocol).
# Usage: scripts/dpt/main.sh DATASET SEED [CFG] [TRAINER]   (CFG default vit_b16, TRAINER default DPT)
# Output: $OUTPUT/DATASET/TRAINER/CFG_<SHOTS>shots/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG] [TRAINER]"
cfg="${3:-vit_b16}"
trainer="${4:-DPT}"
fewshot_train "${trainer}" "${cfg}" "$1" "$2" "$(fewshot_dir "${trainer}" "${cfg}" "$1" "$2")"
