"""Precision modes (TRAINER.<NODE>.PREC) and the non-finite loss guard.

- fp16: upstream behaviour. CLIP keeps OpenAI's fp16 weights and the learnable
  parameters are fp16 too; SGD updates them directly (no master copy).
- fp32: `clip_model.float()`; everything in fp32.
- amp: fp32 parameters plus autocast. On CUDA autocast uses fp16 with a
  GradScaler; on CPU it uses bf16 (CPU autocast has no fp16 matmuls) and no
  scaler (bf16 has fp32's exponent range, so nothing underflows).
- bf16: fp32 parameters plus bf16 autocast on every device, no scaler. Off by
  default; a little faster and leaner than amp on GPUs with bf16 tensor cores,
  with slightly different numbers.
"""
import contextlib
import math

import torch

from dassl.config import ConfigError
from dassl.utils.errors import TrainingDivergedError

PRECISIONS = ("fp16", "fp32", "amp", "bf16")


def check_precision(prec, cfg_key):
    """Fail at config time, before CLIP is loaded, on an unknown precision."""
    if prec not in PRECISIONS:
        raise ConfigError(
            f"{cfg_key} must be one of {', '.join(PRECISIONS)}, got {prec!r}; "
            f"set it in the trainer config or with `{cfg_key} fp32` on the command line"
        )


class Precision:
    """Everything a trainer needs to know about one precision mode on one device."""

    def __init__(self, mode, device):
        check_precision(mode, "PREC")
        self.mode = mode
        self.device = torch.device(device)

    @property
    def is_amp(self):
        return self.mode == "amp"

    def prepare_clip(self, clip_model):
        """Cast CLIP to fp32 for fp32/amp/bf16; fp16 keeps the checkpoint's fp16 weights."""
        if self.mode in ("fp32", "amp", "bf16"):
            clip_model.float()
        return clip_model

    def autocast(self):
        """Autocast context for amp and bf16 forward passes; a no-op otherwise."""
        if self.mode == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        if not self.is_amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def make_grad_scaler(self):
        """A GradScaler for amp on CUDA; None when no loss scaling is needed."""
        if self.is_amp and self.device.type == "cuda":
            return torch.amp.GradScaler("cuda")
        return None


def ensure_finite_loss(loss, epoch, max_epoch, batch_idx, num_batches, prec, prec_key="PREC"):
    """Stop the run at the first non-finite loss instead of training on NaNs (`prec_key` names the config key)."""
    value = loss.detach().float().item()
    if math.isfinite(value):
        return
    hint = (
        f"fp16 parameters trained by SGD overflow easily: try {prec_key} amp or fp32"
        if prec == "fp16"
        else f"try a lower OPTIM.LR, or {prec_key} fp32 if you use amp"
    )
    raise TrainingDivergedError(
        f"Loss is {value} at epoch [{epoch + 1}/{max_epoch}] batch [{batch_idx + 1}/{num_batches}] "
        f"({prec_key}={prec}); {hint}"
    )
