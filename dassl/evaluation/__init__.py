from .build import build_evaluator
from .evaluator import EVALUATOR_REGISTRY, Classification, EvaluatorBase, macro_f1_score
