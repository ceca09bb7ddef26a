#!/usr/bin/env bash
# TGP-T base-to-new, step 1: train on the base classes of DATASET (iteration mode, best val on base classes).
# Usage: scripts/tgpt/base2new_train.sh DATASET SEED [CFG]
#   DATASET  a configs/datasets/<DATASET>.yaml stem (e.g. eurosat)
#   CFG      configs/trainers/TGPT/<CFG>.yaml, default vit_b16_<DATASET> (one config per dataset: LR and MAX_ITER differ)
# Needs DATA/<dataset folder>/captions.txt (or descriptions.txt) for the content loss;
# without one, pass EXTRA_OPTS='TRAINER.TGPT.CONTENT_LOSS False'.
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/TGPT/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
base2new_train TGPT TGPT "${3:-vit_b16_$1}" "$1" "$2"
