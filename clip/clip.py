"""``from clip import clip``: the module name trainer files written for OpenAI's CLIP import.

It offers OpenAI's ``clip.clip`` functions (``load``, ``tokenize``,
``available_models``, ``build_model``) and the two private names every
CoOp-family ``load_clip_to_cpu`` uses, ``_MODELS`` and ``_download``. Names of
the toolkit's own local models (MiniCLIP) have no download URL: looking one up
in ``_MODELS`` says to use the trainers' ``load_clip_to_cpu(cfg)`` instead.
"""
import os
from pathlib import Path

from . import loader
from .loader import available_models, load
from .model import build_model
from .tokenizer import tokenize

__all__ = ["available_models", "build_model", "load", "tokenize"]


class _OpenAIModelURLs(dict):
    """OpenAI's name -> URL table; a toolkit-only name fails with the replacement to use."""

    def __missing__(self, name):
        raise KeyError(
            f"{name!r} has no OpenAI download URL (clip._MODELS knows {list(self)}); a trainer file ported "
            "from the CoOp codebase should load its backbone with "
            "`from trainers.common.backbone import load_clip_to_cpu` "
            "(reads MODEL.BACKBONE.NAME and PATH, local models such as MiniCLIP, safe loading)"
        )


_MODELS = _OpenAIModelURLs(loader._MODELS)


def _download(url, root=None):
    """Path (str) of OpenAI's file at ``url`` in ``root`` (default ~/.cache/clip), downloaded and
    SHA256-verified if missing, as OpenAI's ``clip._download``."""
    names = [name for name, known in loader._MODELS.items() if known == url]
    if not names:
        raise ValueError(f"{url} is not one of OpenAI's CLIP checkpoints {list(loader._MODELS.values())}")
    return os.fspath(loader.checkpoint_path(names[0], download_root=root and Path(root)))
