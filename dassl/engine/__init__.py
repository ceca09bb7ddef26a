from .build import TRAINER_REGISTRY, build_trainer
from .simple_trainer import SimpleTrainer
from .trainer_base import TrainerBase
from .trainer_x import TrainerX
