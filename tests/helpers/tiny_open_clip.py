"""Tiny open_clip models, registered under their own names and saved in open_clip's format.

The configs are open_clip's own shapes of config (ViT-B-16, ViT-B-32-quickgelu,
RN50) shrunk to a few channels, so that `open_clip.create_model(name,
pretrained=None)` builds them offline in milliseconds and serves as the
reference the toolkit's CLIP is compared with.
"""
import json
import math

import torch

from tests.helpers.tiny_clip import randomize_

TEXT = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2}
TINY_CONFIGS = {
    "Tiny-ViT-GELU": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8},
        "text_cfg": TEXT,
    },
    "Tiny-ViT-QuickGELU": {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 48, "head_width": 24, "patch_size": 8},
        "text_cfg": TEXT,
    },
    # The same weights' shapes as Tiny-ViT-GELU, run with QuickGELU: only the config tells them apart.
    "Tiny-ViT-GELU-quickgelu": {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8},
        "text_cfg": TEXT,
    },
    "Tiny-RN": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 32, "patch_size": None},
        "text_cfg": TEXT,
    },
    # SigLIP's text tower: no causal mask, last-token pooling, biased projection.
    "Tiny-SigLIP-Text": {
        "embed_dim": 32,
        "init_logit_bias": -10,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8},
        "text_cfg": {**TEXT, "no_causal_mask": True, "pool_type": "last", "proj_bias": True},
    },
}
SERVABLE = ("Tiny-ViT-GELU", "Tiny-ViT-QuickGELU", "Tiny-RN")


def register_tiny_configs(folder):
    """Write the tiny configs as open_clip JSON files in `folder` and add them to open_clip's registry."""
    import open_clip

    for name, config in TINY_CONFIGS.items():
        (folder / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)
    return folder


def make_open_clip_model(name, seed=0):
    """A random fp32 open_clip model of a registered tiny config, every parameter perturbed,
    with the trained logit scale (100)."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    randomize_(model, seed=seed)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    return model.eval()


def save_open_clip_weights(model, path):
    """Write `model` as open_clip distributes weights (`open_clip_pytorch_model.bin`): a plain state dict."""
    torch.save(model.state_dict(), path)
    return path
