"""TGP-T (Tan et al., AAAI 2024) as one package: model, trainer, captions (its content supervision).

Importing it registers the TGPT trainer and its TRAINER.TGPT config node.
"""
from .model import (
    GENERIC_TEMPLATES,
    TGPTCLIP,
    Bonder,
    TGPTPromptLearner,
    category_targets,
    content_targets,
    mined_templates,
    zero_shot_head,
)
from .trainer import TGPT, WiseFTEvaluator, check_tgpt_cfg, check_val_set, load_tgpt_checkpoint

__all__ = [
    "GENERIC_TEMPLATES",
    "TGPT",
    "TGPTCLIP",
    "Bonder",
    "TGPTPromptLearner",
    "WiseFTEvaluator",
    "category_targets",
    "check_tgpt_cfg",
    "check_val_set",
    "content_targets",
    "load_tgpt_checkpoint",
    "mined_templates",
    "zero_shot_head",
]
