#!/usr/bin/env bash
# Shared logic of scripts/<method>/*.sh; sourced by them, never run directly.
#
# Environment:
#   DATA        dataset root (required), relative paths are taken from the caller's directory
#   OUTPUT      output root (default: <repo>/output); relative to the caller's directory
#   SHOTS       shots per class (default 16)
#   PYTHON      interpreter (default: python)
#   TRAINER_DIR the <Trainer> folder of the runs (default: the trainer's name); plug-in rows such
#               as KgCoOp+TextRefiner run the host trainer into their own folder
#   EXTRA_OPTS  extra yacs KEY VALUE pairs appended to every train.py call; shell quoting
#               is honoured, e.g. EXTRA_OPTS='OPTIM.MAX_EPOCH 2 TRAINER.COOP.CTX_INIT "a photo of a"'
#   TRAINER_DIR name of the <Trainer> folder in the output tree (default: the trainer name);
#               lets plug-in rows such as CoCoOp+TextRefiner keep their own folders
# A script may fill the IMPORT_FLAGS array (`--import MODULE` pairs) before calling run_once.
#
# Every run goes through train.py: it returns a finished folder's stored result at once,
# resumes an unfinished one from its last checkpoint, and refuses a folder written by
# another run (run.json differs) with one line; exit status 86 (RUN_LOCKED): running
# elsewhere. Test runs read the checkpoint epoch from the training run's
# prompt_learner/checkpoint pointer file.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_DIR="$(pwd)"

die() {
    echo "error: $*" >&2
    exit 2
}

absolute_path() {
    case "$1" in
        /*) echo "$1" ;;
        *) echo "${CALLER_DIR}/$1" ;;
    esac
}

if [ -z "${DATA:-}" ]; then
    die "DATA is not set; export DATA=/path/to/datasets (the folder holding the dataset folders)"
fi
DATA="$(absolute_path "${DATA}")"
[ -d "${DATA}" ] || die "DATA=${DATA} is not a directory"
OUTPUT="$(absolute_path "${OUTPUT:-${REPO_ROOT}/output}")"
SHOTS="${SHOTS:-16}"
PYTHON="${PYTHON:-python}"
# EXTRA_OPTS is split into words by xargs, honouring quotes and backslashes, but never evaluated:
# `$(...)`, backticks and variables stay literal text. The last word is a marker that the split worked.
mapfile -d '' EXTRA < <(printf '%s <end>' "${EXTRA_OPTS:-}" | xargs printf '%s\0' 2>/dev/null)
[ "${#EXTRA[@]}" -gt 0 ] && [ "${EXTRA[-1]}" = "<end>" ] || die "EXTRA_OPTS has unbalanced quotes: ${EXTRA_OPTS}"
unset 'EXTRA[-1]'
IMPORT_FLAGS=()
cd "${REPO_ROOT}"

# usage N_REQUIRED N_GIVEN "ARGS" : exit with a usage line unless enough arguments were given.
usage() {
    if [ "$2" -lt "$1" ]; then
        echo "usage: $0 $3" >&2
        exit 2
    fi
}

dataset_config() {
    local path="configs/datasets/$1.yaml"
    [ -f "${path}" ] || die "unknown dataset '$1': ${REPO_ROOT}/${path} does not exist"
    echo "${path}"
}

trainer_config() {
    local path="configs/trainers/$1/$2.yaml"
    [ -f "${path}" ] || die "unknown config '$2' for $1: ${REPO_ROOT}/${path} does not exist"
    echo "${path}"
}

# run_once OUTDIR TRAIN_PY_FLAGS... -- OPTS... : run train.py into OUTDIR; train.py, not
# done.json alone, decides whether a finished run there is this one (run.json).
run_once() {
    local outdir="$1"
    shift
    local flags=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
        flags+=("$1")
        shift
    done
    if [ "$#" -gt 0 ]; then
        shift
    fi
    echo "Run ${outdir}"
    "${PYTHON}" train.py "${IMPORT_FLAGS[@]}" "${flags[@]}" --output-dir "${outdir}" "$@" "${EXTRA[@]}"
}

# load_epoch_flags MODEL_DIR : the --load-epoch flag for the checkpoint the pointer names
# (prompt_learner's pointer, or the first registered model's for trainers without one, e.g. VPT).
load_epoch_flags() {
    local pointer="$1/prompt_learner/checkpoint"
    if [ ! -f "${pointer}" ]; then
        pointer="$(find "$1" -mindepth 2 -maxdepth 2 -name checkpoint | sort | head -n 1)"
        pointer="${pointer:-$1/prompt_learner/checkpoint}"
    fi
    [ -f "$1/done.json" ] || die "training run $1 is not finished (no done.json); run the training script first"
    [ -f "${pointer}" ] || die "no checkpoint pointer ${pointer}; was $1 trained by a prompt trainer?"
    local name
    name="$(head -n 1 "${pointer}" | tr -d '[:space:]')"
    case "${name}" in
        model.pth.tar-*) echo "--load-epoch ${name#model.pth.tar-}" ;;
        model-best.pth.tar) echo "" ;;
        *) die "cannot read a checkpoint name from ${pointer} (found '${name}')" ;;
    esac
}

# base2new_train TRAINER CFG_DIR CFG DATASET SEED : train on the base classes
# (ZeroshotCLIP: evaluate on the base classes, into the same tree).
base2new_train() {
    local trainer="$1" cfg_dir="$2" cfg="$3" dataset="$4" seed="$5"
    local dataset_cfg trainer_cfg extra_flags=()
    dataset_cfg="$(dataset_config "${dataset}")"
    trainer_cfg="$(trainer_config "${cfg_dir}" "${cfg}")"
    if [ "${trainer}" = "ZeroshotCLIP" ]; then
        extra_flags=(--eval-only)
    fi
    run_once "${OUTPUT}/base2new/train_base/${dataset}/shots_${SHOTS}/${TRAINER_DIR:-${trainer}}/${cfg}/seed${seed}" \
        --root "${DATA}" --seed "${seed}" --trainer "${trainer}" --dataset-config-file "${dataset_cfg}" \
        --config-file "${trainer_cfg}" "${extra_flags[@]}" \
        -- DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES base
}

# base2new_test TRAINER CFG_DIR CFG DATASET SEED : evaluate the base-trained run on the new classes.
base2new_test() {
    local trainer="$1" cfg_dir="$2" cfg="$3" dataset="$4" seed="$5"
    local common="${dataset}/shots_${SHOTS}/${TRAINER_DIR:-${trainer}}/${cfg}/seed${seed}"
    local dataset_cfg trainer_cfg load_flags model_dir model_flags=()
    dataset_cfg="$(dataset_config "${dataset}")"
    trainer_cfg="$(trainer_config "${cfg_dir}" "${cfg}")"
    if [ "${trainer}" != "ZeroshotCLIP" ]; then
        model_dir="${OUTPUT}/base2new/train_base/${common}"
        load_flags="$(load_epoch_flags "${model_dir}")"
        # shellcheck disable=SC2206
        model_flags=(--model-dir "${model_dir}" ${load_flags})
    fi
    run_once "${OUTPUT}/base2new/test_new/${common}" \
        --root "${DATA}" --seed "${seed}" --trainer "${trainer}" --dataset-config-file "${dataset_cfg}" \
        --config-file "${trainer_cfg}" "${model_flags[@]}" --eval-only \
        -- DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES new
}

# fewshot_dir TRAINER CFG DATASET SEED : run folder of a few-shot, all-classes training run.
fewshot_dir() {
    echo "${OUTPUT}/$3/${TRAINER_DIR:-$1}/$2_${SHOTS}shots/seed$4"
}

# fewshot_train TRAINER CFG DATASET SEED RUN_DIR [OPTS...] : few-shot training on all classes.
fewshot_train() {
    local trainer="$1" cfg="$2" dataset="$3" seed="$4" outdir="$5"
    shift 5
    local dataset_cfg trainer_cfg
    dataset_cfg="$(dataset_config "${dataset}")"
    trainer_cfg="$(trainer_config "${trainer}" "${cfg}")"
    run_once "${outdir}" --root "${DATA}" --seed "${seed}" --trainer "${trainer}" \
        --dataset-config-file "${dataset_cfg}" --config-file "${trainer_cfg}" \
        -- DATASET.NUM_SHOTS "${SHOTS}" "$@"
}

# xd_test TRAINER CFG SOURCE DATASET SEED : evaluate a model trained on SOURCE (all classes) on DATASET.
xd_test() {
    local trainer="$1" cfg="$2" source="$3" dataset="$4" seed="$5"
    local dataset_cfg trainer_cfg model_dir load_flags
    dataset_cfg="$(dataset_config "${dataset}")"
    trainer_cfg="$(trainer_config "${trainer}" "${cfg}")"
    model_dir="$(fewshot_dir "${trainer}" "${cfg}" "${source}" "${seed}")"
    load_flags="$(load_epoch_flags "${model_dir}")"
    # shellcheck disable=SC2086
    run_once "${OUTPUT}/evaluation/${TRAINER_DIR:-${trainer}}/${cfg}_${SHOTS}shots/${dataset}/seed${seed}" \
        --root "${DATA}" --seed "${seed}" --trainer "${trainer}" --dataset-config-file "${dataset_cfg}" \
        --config-file "${trainer_cfg}" --model-dir "${model_dir}" ${load_flags} --eval-only --
}
