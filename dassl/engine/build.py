"""TRAINER_REGISTRY and build_trainer."""
from ..utils import Registry

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    """Instantiate `TRAINER_REGISTRY.get(cfg.TRAINER.NAME)(cfg)`."""
    if not cfg.TRAINER.NAME:
        raise ValueError("TRAINER.NAME is empty: pass --trainer NAME")
    trainer_class = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    if cfg.VERBOSE:
        print(f"Loading trainer: {cfg.TRAINER.NAME}")
    return trainer_class(cfg)
