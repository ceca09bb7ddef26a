from .lr_scheduler import (
    ConstantWarmupScheduler,
    IterationCosineScheduler,
    LinearWarmupScheduler,
    build_lr_scheduler,
    check_scheduler_cfg,
)
from .optimizer import build_optimizer, check_optimizer_cfg
