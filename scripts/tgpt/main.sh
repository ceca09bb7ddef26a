#!/usr/bin/env bash
# TGP-T few-shot learning on all classes of DATASET (the paper's setting); loops over $SEEDS.
# Usage: scripts/tgpt/main.sh DATASET [CFG]   (CFG default vit_b16_<DATASET>)
# Output: $OUTPUT/DATASET/TGPT/CFG_<SHOTS>shots/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16), SEEDS (default "1 2 3"),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 1 "$#" "DATASET [CFG]"
cfg="${2:-vit_b16_$1}"
for SEED in ${SEEDS:-1 2 3}; do
    fewshot_train TGPT "${cfg}" "$1" "${SEED}" "$(fewshot_dir TGPT "${cfg}" "$1" "${SEED}")"
done
