from .lr_scheduler import ConstantWarmupScheduler, IterationCosineScheduler, LinearWarmupScheduler, build_lr_scheduler
from .optimizer import build_optimizer
