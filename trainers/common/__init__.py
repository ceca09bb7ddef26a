"""Building blocks shared by every prompt-learning trainer."""
from .backbone import load_frozen_clip
from .base_trainer import PromptCLIPTrainer
from .checkpoint import checkpoint_file, load_module_checkpoint, load_module_state
from .frozen_text import frozen_text_features
from .precision import PRECISIONS, Precision, check_precision, ensure_finite_loss
from .prompt_learner import CLASS_TOKEN_POSITIONS, PromptLearner, check_class_token_position, readable_classnames
from .prompted_clip import PromptedCLIP
from .schedules import SquaredCosineWarmupLR, build_squared_cosine_scheduler
from .text_encoding import encode_prompt_embeddings, normalize
from .text_plugins import TextFeaturePlugin, build_text_plugin, register_text_plugin

__all__ = [
    "CLASS_TOKEN_POSITIONS",
    "PRECISIONS",
    "Precision",
    "PromptCLIPTrainer",
    "PromptLearner",
    "PromptedCLIP",
    "SquaredCosineWarmupLR",
    "TextFeaturePlugin",
    "build_squared_cosine_scheduler",
    "build_text_plugin",
    "check_class_token_position",
    "check_precision",
    "checkpoint_file",
    "encode_prompt_embeddings",
    "ensure_finite_loss",
    "frozen_text_features",
    "load_frozen_clip",
    "load_module_checkpoint",
    "load_module_state",
    "normalize",
    "readable_classnames",
    "register_text_plugin",
]
