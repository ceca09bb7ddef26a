"""open_clip checkpoints (LAION-2B, DataComp, DFN, MetaCLIP ...) loaded as this toolkit's ``CLIP``.

open_clip is an optional dependency (``pip install -e ".[open_clip]"``) that
supplies what it owns: the model names, the architecture configs, the
pretrained-weight registry and its download cache. The weights are then loaded
into ``clip.model.CLIP``, whose hooks every method uses; open_clip's CLIP names
its parameters as OpenAI's does, so no key mapping is needed.

Only architectures that CLIP's layout computes exactly are accepted: every key
of open_clip's model config is checked against an allowlist of supported
values, and anything else (SigLIP's text tower, attention-pool heads, no causal
mask, Hugging Face text towers, CoCa ...) is refused by name.
"""
import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import NamedTuple, Optional

import torch
from torch import nn

from .layers import QuickGELU
from .model import CHECKPOINT_ONLY_KEYS, CLIP, load_checked_state_dict
from .transform import CLIP_MEAN, CLIP_STD

INSTALL_HINT = 'pip install -e ".[open_clip]"'
EXAMPLE = "ViT-B-16/laion2b_s34b_b88k"
ANY = object()
OPENAI_TEXT = {"context_length": 77, "vocab_size": 49408}

# Supported values of open_clip's model config: a tuple of values, or ANY.
TOP_LEVEL_SUPPORT = {
    "embed_dim": ANY,
    "quick_gelu": (False, True),
    "vision_cfg": ANY,
    "text_cfg": ANY,
    "init_logit_scale": ANY,
    "nonscalar_logit_scale": (False,),
    "custom_text": (False,),
}
CUSTOM_BLOCK_FLAGS = ("qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc")
SHARED_TOWER_SUPPORT = {
    "layers": ANY,
    "width": ANY,
    "mlp_ratio": (4, 4.0),
    "ls_init_value": (None,),
    "output_tokens": (False, True),
    "act_kwargs": (None,),
    "norm_kwargs": (None,),
    "block_type": (None, "default"),
    **{flag: (False,) for flag in CUSTOM_BLOCK_FLAGS},
}
VISION_SUPPORT = {
    **SHARED_TOWER_SUPPORT,
    "head_width": ANY,
    "patch_size": ANY,
    "image_size": ANY,
    "patch_dropout": ANY,  # training-time only; the frozen tower never drops patches
    "attentional_pool": (False,),
    "attn_pooler_queries": ANY,
    "attn_pooler_heads": ANY,
    "no_ln_pre": (False,),
    "pos_embed_type": ("learnable",),
    "final_ln_after_pool": (False,),
    "pool_type": ("tok",),
    "timm_model_name": (None,),
    "timm_model_pretrained": ANY,
    "timm_pool": ANY,
    "timm_proj": ANY,
    "timm_proj_bias": ANY,
    "timm_drop": ANY,
    "timm_drop_path": ANY,
}
TEXT_SUPPORT = {
    **SHARED_TOWER_SUPPORT,
    "context_length": (OPENAI_TEXT["context_length"],),
    "vocab_size": (OPENAI_TEXT["vocab_size"],),
    "hf_tokenizer_name": (None,),
    "tokenizer_mode": (None,),
    "tokenizer_kwargs": (None,),
    "heads": ANY,
    "embed_cls": (False,),
    "pad_id": ANY,
    "eos_id": ANY,  # used only by pool_type "eos"
    "no_causal_mask": (False,),
    "final_ln_after_pool": (False,),
    "pool_type": ("argmax",),
    "proj_bias": (False,),
    "proj_type": ("linear",),
    "hf_model_name": (None,),
    "hf_model_pretrained": ANY,
    "hf_proj_type": ANY,
    "hf_pooler_type": ANY,
}


class OpenClipSource(NamedTuple):
    """An open_clip backbone: architecture name, pretrained tag (or None), local file (or None),
    and the ``open_clip_config.json`` saved beside the file (or None: open_clip's named config)."""

    architecture: str
    tag: Optional[str] = None
    path: Optional[Path] = None
    config_file: Optional[Path] = None


def import_open_clip():
    """open_clip, or one line saying how to install it."""
    try:
        import open_clip
    except ImportError:
        raise RuntimeError(
            f"open_clip models need the optional open_clip package; install it with {INSTALL_HINT}"
        ) from None
    return open_clip


def is_installed():
    try:
        import_open_clip()
    except RuntimeError:
        return False
    return True


def split_name(name):
    """``'ViT-B-16/laion2b_s34b_b88k'`` -> ``('ViT-B-16', 'laion2b_s34b_b88k')``; no tag -> None."""
    architecture, _, tag = str(name).partition("/")
    return architecture, tag or None


def names_architecture(name):
    """Whether ``name`` (``arch`` or ``arch/tag``) starts with an open_clip architecture name.
    False when open_clip is not installed: the caller then reports an unknown name."""
    if not name or not is_installed():
        return False
    import open_clip

    return split_name(name)[0] in open_clip.list_models()


def source_for(name, path=None):
    """The open_clip source of a model name (and optional local file)."""
    architecture, tag = split_name(name)
    return OpenClipSource(architecture, tag, Path(os.path.expanduser(str(path))) if path else None)


CONFIG_FILE = "open_clip_config.json"


def saved_config(path):
    """The ``open_clip_config.json`` beside a weights file (open_clip's Hugging Face layout), or None."""
    candidate = Path(os.path.expanduser(str(path))).parent / CONFIG_FILE
    return candidate if candidate.is_file() else None


def source_with_saved_config(path, config_file):
    """A weights file whose architecture its saved config gives (no open_clip name needed)."""
    return OpenClipSource(str(config_file), None, Path(os.path.expanduser(str(path))), config_file)


def _read_saved_config(source):
    """Model config and preprocessing of an ``open_clip_config.json`` (``model_cfg``, ``preprocess_cfg``)."""
    try:
        saved = json.loads(source.config_file.read_text(encoding="utf-8"))
        config = saved["model_cfg"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{source.config_file} is not an open_clip config with a 'model_cfg' ({type(error).__name__}: {error})"
        ) from None
    check_supported(source.architecture, config)
    return config, saved.get("preprocess_cfg") or {}


def model_config(source):
    """open_clip's model config and the tag's pretrained config (``{}`` without a tag), both checked."""
    if source.config_file is not None:
        return _read_saved_config(source)
    open_clip = import_open_clip()
    config = open_clip.get_model_config(source.architecture)
    if config is None:
        close = difflib.get_close_matches(source.architecture, open_clip.list_models(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown open_clip architecture {source.architecture!r}.{hint}")
    pretrained = {}
    if source.tag:
        pretrained = open_clip.get_pretrained_cfg(source.architecture, source.tag)
        if not pretrained:
            tags = open_clip.list_pretrained_tags_by_model(source.architecture)
            raise ValueError(
                f"open_clip has no pretrained weights {source.tag!r} for {source.architecture}; its tags: {tags}"
            )
    elif source.path is None:
        tags = open_clip.list_pretrained_tags_by_model(source.architecture)
        raise ValueError(
            f"open_clip architecture {source.architecture!r} needs a pretrained tag, e.g. "
            f"'{source.architecture}/{tags[0] if tags else 'TAG'}' (its tags: {tags}), "
            "or a weights file in MODEL.BACKBONE.PATH"
        )
    check_supported(source.architecture, config)
    return config, pretrained


def _unsupported(settings, support, prefix):
    problems = []
    for key, value in settings.items():
        allowed = support.get(key)
        if allowed is None:
            problems.append(f"{prefix}{key} (not supported by this toolkit)")
        elif allowed is not ANY and value not in allowed:
            problems.append(f"{prefix}{key} = {value!r} (supported: {', '.join(map(repr, allowed))})")
    return problems


def _tower_settings(config):
    """Vision and text settings with open_clip's defaults filled in (its config dataclasses)."""
    import_open_clip()
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    towers = []
    for key, config_class in (("vision_cfg", CLIPVisionCfg), ("text_cfg", CLIPTextCfg)):
        try:
            towers.append(dataclasses.asdict(config_class(**config.get(key, {}))))
        except TypeError as error:
            raise ValueError(f"open_clip rejects the {key} of this model config ({error})") from None
    return towers


def check_supported(architecture, config):
    """Refuse, naming every offending key, a model config whose towers CLIP's hooks cannot serve."""
    vision, text = _tower_settings(config)
    problems = _unsupported(config, TOP_LEVEL_SUPPORT, "")
    problems += _unsupported(vision, VISION_SUPPORT, "vision_cfg.")
    problems += _unsupported(text, TEXT_SUPPORT, "text_cfg.")
    size = vision["image_size"]
    if isinstance(size, (tuple, list)) and len(set(size)) != 1:
        problems.append(f"vision_cfg.image_size = {size!r} (supported: square images)")
    if problems:
        raise ValueError(
            f"open_clip model {architecture} cannot run on this toolkit's CLIP hooks: {'; '.join(problems)}. "
            "Supported: a ViT or ModifiedResNet image tower and a causal text transformer pooled at EOT "
            f"with a linear text projection (e.g. {EXAMPLE})"
        )


def checkpoint_file(source, cache_dir=None):
    """The local weights file: ``source.path``, else the tag's file from open_clip's registry and cache."""
    if source.path is not None:
        if not source.path.is_file():
            raise FileNotFoundError(f"open_clip weights file not found: {source.path}")
        return source.path
    open_clip = import_open_clip()
    _, pretrained = model_config(source)
    try:
        return Path(open_clip.download_pretrained(pretrained, cache_dir=cache_dir and str(cache_dir)))
    except Exception as error:  # open_clip raises many kinds (HTTP, hub, checksum); all mean "no file"
        raise RuntimeError(
            f"could not download open_clip weights {source.architecture}/{source.tag} ({type(error).__name__}: "
            f"{error}); download them manually and set MODEL.BACKBONE.PATH to the file "
            f"(with MODEL.BACKBONE.NAME {source.architecture})"
        ) from error


def read_weights(path):
    """State dict of an open_clip weights file (``.safetensors`` or a ``weights_only`` torch file)."""
    from .loader import read_state_dict

    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        state_dict = load_file(str(path), device="cpu")
    else:
        state_dict = read_state_dict(path)
    if state_dict and all(key.startswith("module.") for key in state_dict):
        state_dict = {key[len("module."):]: value for key, value in state_dict.items()}
    return state_dict


def _square(size):
    return size[0] if isinstance(size, (tuple, list)) else size


def uses_quick_gelu(config, pretrained):
    """QuickGELU when the model config or the tag says the weights were trained with it
    (open_clip itself only warns when they disagree; the weights decide here)."""
    return bool(config.get("quick_gelu") or pretrained.get("quick_gelu"))


def build_model(source, config, pretrained, state_dict):
    """An fp32 eval-mode ``CLIP`` with open_clip's architecture, activation, heads and preprocessing."""
    vision, text = _tower_settings(config)
    resnet = isinstance(vision["layers"], (tuple, list))
    head_channels = vision["width"] * 32 if resnet else vision["width"]
    with torch.device("meta"):  # no random init: every weight comes from the file
        model = CLIP(
            embed_dim=config["embed_dim"],
            image_resolution=_square(vision["image_size"]),
            vision_layers=tuple(vision["layers"]) if resnet else vision["layers"],
            vision_width=vision["width"],
            vision_patch_size=None if resnet else vision["patch_size"],
            context_length=text["context_length"],
            vocab_size=text["vocab_size"],
            transformer_width=text["width"],
            transformer_heads=text["heads"],
            transformer_layers=text["layers"],
            vision_heads=head_channels // vision["head_width"],
            act_layer=QuickGELU if uses_quick_gelu(config, pretrained) else nn.GELU,
        )
    state_dict = {k: v for k, v in state_dict.items() if k not in CHECKPOINT_ONLY_KEYS}
    load_checked_state_dict(
        model, state_dict, f"is this a checkpoint of open_clip's {source.architecture} (MODEL.BACKBONE.NAME)?"
    )
    model.image_mean = tuple(pretrained.get("mean", CLIP_MEAN))
    model.image_std = tuple(pretrained.get("std", CLIP_STD))
    model.image_interpolation = pretrained.get("interpolation", "bicubic")
    model.image_resize_mode = pretrained.get("resize_mode", "shortest")
    return model.eval()


def load(source, cache_dir=None):
    """``source`` -> fp32 ``CLIP`` (checked config, weights from the file or open_clip's cache)."""
    config, pretrained = model_config(source)
    return build_model(source, config, pretrained, read_weights(checkpoint_file(source, cache_dir)))


def identity(source):
    """What decides the features besides the weights file: the resolved architecture and activation."""
    config, pretrained = model_config(source)
    return json.dumps(
        {"open_clip": source.architecture, "tag": source.tag, "config": config,
         "quick_gelu": uses_quick_gelu(config, pretrained)},
        sort_keys=True,
    )
