#!/usr/bin/env bash
# One run of any protocol for any trainer, built-in or your own: the script tools/sweep.py derives
# for every run that has no hand-written script (few-shot, cross-dataset, domain generalisation,
# and base-to-new of trainers outside its method table).
# Usage: scripts/protocol.sh STEP TRAINER CFG_DIR CFG DATASET SEED SOURCE [IMPORT...]
#   STEP     base2new_train | base2new_test (as scripts/<method>/base2new_*.sh)
#            fewshot: train on SHOTS shots of all classes of DATASET (ZeroshotCLIP: evaluate on it)
#            xd_test: evaluate the 16-shot model trained on SOURCE (a `fewshot` run) on all classes of DATASET
#   CFG_DIR  configs/trainers/<CFG_DIR>/<CFG>.yaml (ZeroshotCLIP: CoOp)
#   SOURCE   xd_test's source dataset; "-" for the other steps
#   IMPORT   modules or .py files passed to train.py as --import (trainers registered by the user)
# Output: fewshot  $OUTPUT/DATASET/<TRAINER_DIR>/CFG_<SHOTS>shots/seedSEED  (the CoOp repositories' layout)
#         xd_test  $OUTPUT/evaluation/<TRAINER_DIR>/CFG_<SHOTS>shots/DATASET/seedSEED
# Environment: DATA (required), OUTPUT, SHOTS (ZeroshotCLIP: 0), PYTHON, TRAINER_DIR, EXTRA_OPTS - see scripts/common.sh.
# Runs from any directory; a run whose folder holds done.json is skipped.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
usage 7 "$#" "STEP TRAINER CFG_DIR CFG DATASET SEED SOURCE [IMPORT...]"
STEP="$1" TRAINER="$2" CFG_DIR="$3" CFG="$4" DATASET="$5" SEED="$6" SOURCE="$7"
shift 7
for target in "$@"; do
    IMPORT_FLAGS+=(--import "${target}")
done

# run_all_classes OUTDIR DATASET [FLAGS...] : train.py on all classes of DATASET (eval-only flags pass through).
run_all_classes() {
    local outdir="$1" dataset_cfg trainer_cfg
    dataset_cfg="$(dataset_config "$2")"
    trainer_cfg="$(trainer_config "${CFG_DIR}" "${CFG}")"
    shift 2
    run_once "${outdir}" --root "${DATA}" --seed "${SEED}" --trainer "${TRAINER}" \
        --dataset-config-file "${dataset_cfg}" --config-file "${trainer_cfg}" "$@" --
}

zero_shot=false
[ "${TRAINER}" = "ZeroshotCLIP" ] && zero_shot=true
case "${STEP}" in
    base2new_train) base2new_train "${TRAINER}" "${CFG_DIR}" "${CFG}" "${DATASET}" "${SEED}" ;;
    base2new_test) base2new_test "${TRAINER}" "${CFG_DIR}" "${CFG}" "${DATASET}" "${SEED}" ;;
    fewshot)
        outdir="$(fewshot_dir "${TRAINER}" "${CFG}" "${DATASET}" "${SEED}")"
        if "${zero_shot}"; then
            run_all_classes "${outdir}" "${DATASET}" --eval-only
        else
            EXTRA=(DATASET.NUM_SHOTS "${SHOTS}" "${EXTRA[@]}")
            run_all_classes "${outdir}" "${DATASET}"
        fi
        ;;
    xd_test)
        outdir="${OUTPUT}/evaluation/${TRAINER_DIR:-${TRAINER}}/${CFG}_${SHOTS}shots/${DATASET}/seed${SEED}"
        if "${zero_shot}"; then
            run_all_classes "${outdir}" "${DATASET}" --eval-only
        else
            model_dir="$(fewshot_dir "${TRAINER}" "${CFG}" "${SOURCE}" "${SEED}")"
            load_flags="$(load_epoch_flags "${model_dir}")"
            # shellcheck disable=SC2086
            run_all_classes "${outdir}" "${DATASET}" --model-dir "${model_dir}" ${load_flags} --eval-only
        fi
        ;;
    *) die "unknown STEP '${STEP}': use base2new_train, base2new_test, fewshot or xd_test" ;;
esac
