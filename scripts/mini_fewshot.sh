#!/usr/bin/env bash
# The few-shot protocol on the mini world (MiniCLIP + the two shipped mini datasets): every trainer,
# 1/2/4/8/16 shots of all classes, 3 seeds, on CPU. Ends with the few-shot tables (Markdown, CSV) and
# CoOp's few-shot figure (one panel per dataset plus the average, zero-shot CLIP as a flat marker).
#
# Usage: bash scripts/mini_fewshot.sh [extra tools/sweep.py arguments, e.g. --seeds 1 --shots 1 4 16]
# Environment: MINI_WORLD_ROOT  where the datasets are unpacked (default ~/.cache/clip-prompt-toolkit/mini_world)
#              OUTPUT           output root (default <repo>/output/mini_fewshot)
#              JOBS             parallel runs (default: the number of CPU cores, at most 4)
# A finished run is never redone: run the command again after an interruption to resume.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
DATA_ROOT="$("${PYTHON}" "${REPO_ROOT}/tools/build_mini_world.py" extract ${MINI_WORLD_ROOT:+--root "${MINI_WORLD_ROOT}"} | tail -n 1)"
OUT="${OUTPUT:-${REPO_ROOT}/output/mini_fewshot}"
CORES="$(nproc 2>/dev/null || echo 2)"
JOBS="${JOBS:-$(( CORES < 4 ? CORES : 4 ))}"
# One thread per run: the runs themselves are spread over the cores.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

TRAINERS=(
    ZeroshotCLIP:mini CoOp:mini CoCoOp:mini KgCoOp:mini
    DPT:mini VLP:mini VPT:mini TGPT:mini
    TextRefiner:mini KgCoOp+TextRefiner:mini
)

"${PYTHON}" "${REPO_ROOT}/tools/sweep.py" --protocol fewshot --root "${DATA_ROOT}" --output "${OUT}" --warm \
    --jobs "${JOBS}" --trainers "${TRAINERS[@]}" --datasets mini_fashion_mnist mini_clipart --seeds 1 2 3 \
    --shots 1 2 4 8 16 --out-prefix "${OUT}/mini_fewshot_results" --plot "${OUT}/mini_fewshot.png" "$@"
