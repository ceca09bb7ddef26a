#!/usr/bin/env bash
# CoCoOp cross-dataset / domain generalisation, step 1: few-shot training on all classes of
# the source dataset ($XD_SOURCE, default imagenet).
# Usage: scripts/cocoop/xd_train.sh SEED [CFG]   (CFG default vit_b16_c4_ep10_batch1_ctxv1)
# Output: $OUTPUT/<source>/CoCoOp/CFG_<SHOTS>shots/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 1 "$#" "SEED [CFG]"
XD_SOURCE="${XD_SOURCE:-imagenet}"
cfg="${2:-vit_b16_c4_ep10_batch1_ctxv1}"
fewshot_train CoCoOp "${cfg}" "${XD_SOURCE}" "$1" "$(fewshot_dir CoCoOp "${cfg}" "${XD_SOURCE}" "$1")"
