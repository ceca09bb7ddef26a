#!/usr/bin/env bash
# CoOp few-shot learning on all classes of DATASET, upstream's interface; loops over $SEEDS.
# Usage: scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC
#   CFG   configs/trainers/CoOp/<CFG>.yaml (COOP.md: rn50_ep50 for 1 shot, rn50_ep100 for 2/4, rn50 for 8/16;
#         *_ep50 on ImageNet)
#   CTP   class token position: end | middle | front
#   NCTX  number of context tokens;  SHOTS shots per class;  CSC class-specific context: True | False
# Output: $OUTPUT/DATASET/CoOp/CFG_<SHOTS>shots/nctxNCTX_cscCSC_ctpCTP/seedSEED
# Environment: DATA (required), OUTPUT (default <repo>/output), SEEDS (default "1 2 3"),
#              PYTHON, EXTRA_OPTS (extra yacs opts) - see scripts/common.sh.
# Runs from any directory; train.py returns a finished run's result at once (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
usage 6 "$#" "DATASET CFG CTP NCTX SHOTS CSC"
DATASET="$1" CFG="$2" CTP="$3" NCTX="$4" SHOTS="$5" CSC="$6"
for SEED in ${SEEDS:-1 2 3}; do
    fewshot_train CoOp "${CFG}" "${DATASET}" "${SEED}" \
        "${OUTPUT}/${DATASET}/CoOp/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}" \
        TRAINER.COOP.N_CTX "${NCTX}" TRAINER.COOP.CSC "${CSC}" TRAINER.COOP.CLASS_TOKEN_POSITION "${CTP}"
done
