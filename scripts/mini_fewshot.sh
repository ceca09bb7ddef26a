#!/usr/bin/env bash
# The few-shot protocol on the mini world (MiniCLIP + the two shipped mini datasets): every trainer
# of scripts/mini_world.sh, 1/2/4/8/16 shots of all classes, 3 seeds, on CPU. Ends with the few-shot
# tables (Markdown, CSV) and CoOp's few-shot figure (one panel per dataset plus the average,
# zero-shot CLIP as a flat marker). The trainers run the mini_fewshot configs: the mini configs at
# 1-4 shots, shorter schedules at 8 and 16 (tools/sweeping/protocols.py says why and how).
#
# Usage: bash scripts/mini_fewshot.sh [extra tools/sweep.py arguments, e.g. --seeds 1 --shots 1 4 16]
# Environment: as scripts/mini_world.sh; OUTPUT defaults to <repo>/output/mini_fewshot.
# A finished run is never redone: run the command again after an interruption to resume.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OUTPUT="${OUTPUT:-${REPO_ROOT}/output/mini_fewshot}" MINI_CONFIG="${MINI_CONFIG:-mini_fewshot}"
exec bash "${REPO_ROOT}/scripts/mini_world.sh" --protocol fewshot --shots 1 2 4 8 16 \
    --out-prefix "${OUTPUT}/mini_fewshot_results" --plot "${OUTPUT}/mini_fewshot.png" "$@"
