"""build_evaluator: TEST.EVALUATOR -> evaluator instance."""
from .evaluator import EVALUATOR_REGISTRY


def build_evaluator(cfg, **kwargs):
    return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, **kwargs)
