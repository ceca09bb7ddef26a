"""Learning-rate schedules beyond Dassl's, with plain (weights_only-safe) state."""
import math

from torch.optim.lr_scheduler import LRScheduler

from dassl.config import ConfigError


class SquaredCosineWarmupLR(LRScheduler):
    """Constant warmup, then base_lr * [(1 + cos(pi * (e - W) / T)) / 2] ** 2.

    This is the schedule KgCoOp's published numbers most likely used: its
    code stepped two warmup+cosine schedulers on one optimizer, which on the
    PyTorch of the time multiplied the cosine factor in twice (it reproduces
    the author's logged learning rates). W = warmup epochs, T = MAX_EPOCH,
    stepped once per epoch like Dassl's schedulers.
    """

    def __init__(self, optimizer, max_epoch, warmup_epoch=0, warmup_lr=1e-5, last_epoch=-1):
        if max_epoch < 1:
            raise ConfigError(f"OPTIM.MAX_EPOCH must be at least 1, got {max_epoch}")
        self.max_epoch = max_epoch
        self.warmup_epoch = max(warmup_epoch, 0)
        self.warmup_lr = warmup_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        epoch = self.last_epoch
        if epoch < self.warmup_epoch:
            return [self.warmup_lr for _ in self.base_lrs]
        factor = ((1 + math.cos(math.pi * (epoch - self.warmup_epoch) / self.max_epoch)) / 2) ** 2
        return [base_lr * factor for base_lr in self.base_lrs]


def build_squared_cosine_scheduler(optimizer, optim_cfg):
    """SquaredCosineWarmupLR from a Dassl OPTIM node (constant warmup or none)."""
    warmup_epoch = optim_cfg.WARMUP_EPOCH if optim_cfg.WARMUP_EPOCH > 0 else 0
    if warmup_epoch and optim_cfg.WARMUP_TYPE != "constant":
        raise ConfigError(
            f"the squared-cosine schedule supports OPTIM.WARMUP_TYPE 'constant' only, got {optim_cfg.WARMUP_TYPE!r}"
        )
    return SquaredCosineWarmupLR(
        optimizer, optim_cfg.MAX_EPOCH, warmup_epoch=warmup_epoch, warmup_lr=optim_cfg.WARMUP_CONS_LR
    )
