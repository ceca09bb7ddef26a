"""CLIP for prompt learning: OpenAI-compatible model, loader (OpenAI and open_clip checkpoints), tokenizer, preprocessing and hooks."""
from .loader import (
    available_models,
    backbone_checkpoint_source,
    backbone_identity,
    check_backbone_source,
    check_checkpoint_source,
    load,
    load_clip_to_cpu,
    open_clip_source,
    register_local_model,
)
from .model import CLIP, build_model
from .tokenizer import tokenize
from .transform import CLIP_MEAN, CLIP_STD, build_preprocess
from .vision_transformer import VisualOutput

__all__ = [
    "CLIP",
    "CLIP_MEAN",
    "CLIP_STD",
    "VisualOutput",
    "available_models",
    "backbone_checkpoint_source",
    "backbone_identity",
    "build_model",
    "build_preprocess",
    "check_backbone_source",
    "check_checkpoint_source",
    "load",
    "load_clip_to_cpu",
    "open_clip_source",
    "register_local_model",
    "tokenize",
]
