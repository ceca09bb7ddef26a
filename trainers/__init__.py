"""Prompt-learning trainers on a frozen CLIP backbone.

Each method lives in its own module and registers itself with Dassl's
TRAINER_REGISTRY on import (train.py imports every module of this folder).
Shared building blocks live in `trainers.common`.
"""
