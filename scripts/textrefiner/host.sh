#!/usr/bin/env bash
# Sourced by scripts/textrefiner/*.sh, never run directly: sources scripts/common.sh, then picks
# the host trainer from $HOST and, for a host other than the TextRefiner trainer, switches
# TextRefiner on and names the run folder <HOST>+TextRefiner (unless TRAINER_DIR is set).
# Sets HOST_TRAINER and HOST_CFG (the host's default config under configs/trainers/<HOST_TRAINER>/).
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
HOST_TRAINER="${HOST:-TextRefiner}"
case "${HOST_TRAINER}" in
    TextRefiner) HOST_CFG=vit_b16_ep10_ctxv1 ;;
    CoOp) HOST_CFG=vit_b16_ctxv1 ;;
    KgCoOp) HOST_CFG=vit_b16_ep100_ctxv1 ;;
    CoCoOp) HOST_CFG=vit_b16_c4_ep10_batch1_ctxv1 ;;
    DPT | VLP) HOST_CFG=vit_b16 ;;
    *) die "HOST=${HOST_TRAINER} cannot host TextRefiner; use TextRefiner (default), CoOp, KgCoOp, CoCoOp, DPT or VLP" ;;
esac
if [ "${HOST_TRAINER}" != "TextRefiner" ]; then
    TRAINER_DIR="${TRAINER_DIR:-${HOST_TRAINER}+TextRefiner}"
    EXTRA+=(TRAINER.TEXTREFINER.ENABLED True)
fi
