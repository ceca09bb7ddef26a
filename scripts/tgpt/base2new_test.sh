#!/usr/bin/env bash
# TGP-T base-to-new, step 2: evaluate the base-trained run on the new classes of DATASET.
# Usage: scripts/tgpt/base2new_test.sh DATASET SEED [CFG]   (same arguments as base2new_train.sh)
# Loads the deployed model of the training run: model-best.pth.tar when it selected on val
# (the TGPT configs do), else the checkpoint its prompt_learner/checkpoint pointer names.
# New-class head rows are built like the initialisation (mined-template zero-shot rows).
# Output: $OUTPUT/base2new/test_new/DATASET/shots_$SHOTS/TGPT/CFG/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 2 "$#" "DATASET SEED [CFG]"
dataset="$1" seed="$2" cfg="${3:-vit_b16_$1}"
common="${dataset}/shots_${SHOTS}/TGPT/${cfg}/seed${seed}"
model_dir="${OUTPUT}/base2new/train_base/${common}"
[ -f "${model_dir}/done.json" ] || die "training run ${model_dir} is not finished (no done.json); run scripts/tgpt/base2new_train.sh first"
load_flags=""
if [ ! -f "${model_dir}/prompt_learner/model-best.pth.tar" ]; then
    load_flags="$(load_epoch_flags "${model_dir}")"
fi
# shellcheck disable=SC2086
run_once "${OUTPUT}/base2new/test_new/${common}" \
    --root "${DATA}" --seed "${seed}" --trainer TGPT --dataset-config-file "$(dataset_config "${dataset}")" \
    --config-file "$(trainer_config TGPT "${cfg}")" --model-dir "${model_dir}" ${load_flags} --eval-only \
    -- DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES new
