#!/usr/bin/env bash
# The main job on the embedded default: a base-to-new sweep of every trainer on the mini world
# (MiniCLIP + the two shipped mini datasets), 3 seeds, 16 shots, on CPU.
# Ends with the Base/New/H tables printed and saved as Markdown, CSV and a PNG plot.
#
# Usage: bash scripts/mini_world.sh [extra tools/sweep.py arguments, e.g. --seeds 1]
# Environment: MINI_WORLD_ROOT  where the datasets are unpacked (default ~/.cache/clip-prompt-toolkit/mini_world)
#              OUTPUT           output root (default <repo>/output/mini_world)
#              JOBS             parallel runs (default: the number of CPU cores, at most 4)
#              MINI_CONFIG      the trainers' config (default mini; mini_fewshot: the per-shot family
#                               of scripts/mini_fewshot.sh, see tools/sweeping/protocols.py)
# A finished run is never redone: run the command again after an interruption to resume.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
DATA_ROOT="$("${PYTHON}" "${REPO_ROOT}/tools/build_mini_world.py" extract ${MINI_WORLD_ROOT:+--root "${MINI_WORLD_ROOT}"} | tail -n 1)"
OUT="${OUTPUT:-${REPO_ROOT}/output/mini_world}"
CORES="$(nproc 2>/dev/null || echo 2)"
JOBS="${JOBS:-$(( CORES < 4 ? CORES : 4 ))}"
CONFIG="${MINI_CONFIG:-mini}"
# One thread per run: the runs themselves are spread over the cores.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Freed memory stays in the heap: by default glibc hands every tensor above 32 MiB back to the
# kernel and page-faults it in again at the next step (TGP-T's 49408-way token logits, CoCoOp's
# per-image text batches), which was up to 40% of such a run's CPU time. Same numbers either way.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+${GLIBC_TUNABLES}:}glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296"

TRAINERS=()
for trainer in ZeroshotCLIP CoOp CoCoOp KgCoOp DPT VLP VPT TGPT TextRefiner KgCoOp+TextRefiner; do
    TRAINERS+=("${trainer}:${CONFIG}")
done

"${PYTHON}" "${REPO_ROOT}/tools/sweep.py" --root "${DATA_ROOT}" --output "${OUT}" --warm --jobs "${JOBS}" \
    --trainers "${TRAINERS[@]}" --datasets mini_fashion_mnist mini_clipart --seeds 1 2 3 --shots 16 \
    --out-prefix "${OUT}/mini_world_results" --plot "${OUT}/mini_world_results.png" "$@"
