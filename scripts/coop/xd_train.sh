#!/usr/bin/env bash
# CoOp cross-dataset / domain generalisation, step 1: few-shot training on all classes of
# the source dataset ($XD_SOURCE, default imagenet).
# Usage: scripts/coop/xd_train.sh SEED [CFG]   (CFG default vit_b16_ctxv1)
# Output: $OUTPUT/<source>/CoOp/CFG_<SHOTS>shots/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SHOTS (default 16),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 1 "$#" "SEED [CFG]"
XD_SOURCE="${XD_SOURCE:-imagenet}"
cfg="${2:-vit_b16_ctxv1}"
fewshot_train CoOp "${cfg}" "${XD_SOURCE}" "$1" "$(fewshot_dir CoOp "${cfg}" "${XD_SOURCE}" "$1")"
