"""build_lr_scheduler: per-epoch schedules with an optional warmup wrapper.

The warmup wrappers are plain classes (not torch LRScheduler subclasses) whose
state_dict holds only numbers plus the successor's own state dict, so
checkpoints load with torch.load(weights_only=True).
"""
import math

import torch

from ..config.checks import check_choice, check_int_at_least, invalid_value, is_int

AVAILABLE_SCHEDULERS = ("single_step", "multi_step", "cosine")
AVAILABLE_WARMUPS = ("constant", "linear")


class _BaseWarmupScheduler:
    """Runs its own LR rule while `last_epoch < warmup_epoch`, then steps `successor`.

    Constructing it applies the epoch-0 LR (as torch schedulers do); call
    `step()` once per epoch.
    """

    def __init__(self, optimizer, successor, warmup_epoch):
        self.optimizer = optimizer
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        self.base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
        self.last_epoch = -1
        self._last_lr = None
        self.step()

    def warmup_lr(self):
        raise NotImplementedError

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return self.warmup_lr()

    def step(self):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step()
            self._last_lr = self.successor.get_last_lr()
            return
        self.last_epoch += 1
        self._last_lr = list(self.get_lr())
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self):
        return self._last_lr

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "successor")}
        state["successor"] = self.successor.state_dict()
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        self.successor.load_state_dict(state.pop("successor"))
        self.__dict__.update(state)


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    """LR = cons_lr during the warmup epochs."""

    def __init__(self, optimizer, successor, warmup_epoch, cons_lr):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch)

    def warmup_lr(self):
        return [self.cons_lr for _ in self.base_lrs]


class LinearWarmupScheduler(_BaseWarmupScheduler):
    """LR = min_lr at epoch 0, then base_lr * epoch / warmup_epoch."""

    def __init__(self, optimizer, successor, warmup_epoch, min_lr):
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch)

    def warmup_lr(self):
        if self.last_epoch == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]


def _step_epochs(stepsize):
    """OPTIM.STEPSIZE as a list (a library caller may give a single int)."""
    return list(stepsize) if isinstance(stepsize, (list, tuple)) else [stepsize]


def _check_stepsize(stepsize):
    epochs = _step_epochs(stepsize)
    if not epochs or not all(is_int(e) for e in epochs):
        raise invalid_value("OPTIM.STEPSIZE", stepsize, "a non-empty list of integer epochs for single_step / multi_step")


def check_scheduler_cfg(optim_cfg):
    """ConfigError on an OPTIM.* schedule value, before any model or data is built."""
    name = optim_cfg.LR_SCHEDULER
    check_choice("OPTIM.LR_SCHEDULER", name, AVAILABLE_SCHEDULERS)
    check_choice("OPTIM.WARMUP_TYPE", optim_cfg.WARMUP_TYPE, AVAILABLE_WARMUPS)
    check_int_at_least("OPTIM.MAX_ITER", optim_cfg.MAX_ITER, 0)
    check_int_at_least("OPTIM.WARMUP_ITER", optim_cfg.WARMUP_ITER, 0)
    if optim_cfg.MAX_ITER > 0 and name != "cosine":
        raise invalid_value("OPTIM.LR_SCHEDULER", name, "cosine in iteration mode (OPTIM.MAX_ITER > 0)")
    if name in ("single_step", "multi_step"):
        _check_stepsize(optim_cfg.STEPSIZE)


def _main_scheduler(optimizer, optim_cfg):
    name, epochs = optim_cfg.LR_SCHEDULER, _step_epochs(optim_cfg.STEPSIZE)
    if name == "single_step":
        step = optim_cfg.MAX_EPOCH if epochs[-1] <= 0 else epochs[-1]
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=optim_cfg.GAMMA)
    if name == "multi_step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=epochs, gamma=optim_cfg.GAMMA)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=float(optim_cfg.MAX_EPOCH))


def build_lr_scheduler(optimizer, optim_cfg):
    """The OPTIM.LR_SCHEDULER schedule, wrapped in a warmup if OPTIM.WARMUP_EPOCH > 0
    (or the per-iteration cosine if OPTIM.MAX_ITER > 0).

    With WARMUP_RECOUNT (default) the successor starts counting at 0 after the
    warmup (hence the one-epoch offset of the cosine); otherwise it starts at
    WARMUP_EPOCH.
    """
    check_scheduler_cfg(optim_cfg)
    if optim_cfg.MAX_ITER > 0:
        return IterationCosineScheduler(
            optimizer, optim_cfg.MAX_ITER, optim_cfg.WARMUP_ITER, optim_cfg.WARMUP_TYPE, optim_cfg.WARMUP_CONS_LR
        )
    scheduler = _main_scheduler(optimizer, optim_cfg)
    if optim_cfg.WARMUP_EPOCH <= 0:
        return scheduler
    if not optim_cfg.WARMUP_RECOUNT:
        scheduler.last_epoch = optim_cfg.WARMUP_EPOCH
    if optim_cfg.WARMUP_TYPE == "constant":
        return ConstantWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_CONS_LR)
    return LinearWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_MIN_LR)


class IterationCosineScheduler:
    """Iteration mode (OPTIM.MAX_ITER > 0): stepped BEFORE each optimizer step.

    Step k (1..MAX_ITER) with W = WARMUP_ITER uses base_lr * k / W (linear
    warmup) or WARMUP_CONS_LR (constant warmup) while k < W, then
    base_lr * (1 + cos(pi * (k - W) / MAX_ITER)) / 2, so the last step stays above 0.
    """

    def __init__(self, optimizer, max_iter, warmup_iter=0, warmup_type="linear", cons_lr=1e-5):
        check_choice("OPTIM.WARMUP_TYPE", warmup_type, AVAILABLE_WARMUPS)
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.warmup_iter = warmup_iter
        self.warmup_type = warmup_type
        self.cons_lr = cons_lr
        self.base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
        self.last_epoch = 0
        self._last_lr = list(self.base_lrs)

    def lr_at(self, base_lr, k):
        if k < self.warmup_iter:
            return base_lr * k / self.warmup_iter if self.warmup_type == "linear" else self.cons_lr
        return base_lr * 0.5 * (1 + math.cos(math.pi * (k - self.warmup_iter) / self.max_iter))

    def step(self):
        self.last_epoch += 1
        self._last_lr = [self.lr_at(base_lr, self.last_epoch) for base_lr in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self):
        return self._last_lr

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
