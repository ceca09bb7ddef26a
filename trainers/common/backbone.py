"""Loading the frozen CLIP backbone once per run, in the run's precision.

The one place that turns MODEL.BACKBONE into ``clip``'s plain arguments
(model name, weights path, trust flag): ``clip`` knows no config.
"""
import contextlib
import os

import clip
from clip.model import convert_weights

from dassl.config import ConfigError, register_cfg_extension
from dassl.utils.errors import BackboneLoadError

from .templates import OPEN_CLIP_FAMILY, OPENAI_FAMILY

NORMALISATION_TOLERANCE = 1e-6
LOAD_ERROR = "Cannot load the CLIP backbone (MODEL.BACKBONE.NAME / PATH)"


@register_cfg_extension
def add_text_checkpointing_cfg(cfg):
    """TRAIN.TEXT_CHECKPOINTING: recompute the text tower's activations in backward (memory for many classes)."""
    cfg.TRAIN.TEXT_CHECKPOINTING = False


@contextlib.contextmanager
def backbone_errors():
    """The loader's errors as one BackboneLoadError that names the config keys."""
    try:
        yield
    except BackboneLoadError:
        raise
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise BackboneLoadError(f"{LOAD_ERROR}: {error}") from error


@register_cfg_extension
def add_backbone_trust_cfg(cfg):
    """MODEL.BACKBONE.TRUST_TORCHSCRIPT: open a TorchScript PATH that is not an OpenAI release (runs its code)."""
    cfg.MODEL.BACKBONE.TRUST_TORCHSCRIPT = False


def backbone_source(cfg):
    """MODEL.BACKBONE as ``clip``'s (name, path or None); a PATH that is not there fails naming the key."""
    backbone = cfg.MODEL.BACKBONE
    path = backbone.PATH or None
    if path and not os.path.isfile(os.path.expanduser(path)):
        raise BackboneLoadError(f"{LOAD_ERROR}: MODEL.BACKBONE.PATH points to a missing file: {path}")
    return backbone.NAME, path


def check_backbone(cfg):
    """A checkpoint that is not there, an untrusted TorchScript one, or an open_clip architecture the
    hooks cannot serve, fails at config check, before the dataset is read (nothing is loaded or downloaded)."""
    with backbone_errors():
        clip.check_backbone_source(*backbone_source(cfg), trust_torchscript=cfg.MODEL.BACKBONE.TRUST_TORCHSCRIPT)


def load_clip_to_cpu(cfg):
    """CLIP for MODEL.BACKBONE (PATH if set, else NAME; TRUST_TORCHSCRIPT) on CPU, as ``clip.load_clip_to_cpu``
    loads it; the name CoOp-family trainer files call, so a ported file imports this one."""
    with backbone_errors():
        name, path = backbone_source(cfg)
        return clip.load_clip_to_cpu(name, path, trust_torchscript=cfg.MODEL.BACKBONE.TRUST_TORCHSCRIPT)


def backbone_family(cfg):
    """"open_clip" when MODEL.BACKBONE names an open_clip model or file, else "openai" (OpenAI-format
    weights: OpenAI's releases, their files, MiniCLIP); the prompt templates' defaults depend on it."""
    backbone = cfg.MODEL.BACKBONE
    source = clip.open_clip_source(backbone.NAME, backbone.PATH or None)
    return OPEN_CLIP_FAMILY if source is not None else OPENAI_FAMILY


def backbone_label(cfg):
    """MODEL.BACKBONE as the logs name it: NAME, and PATH when set."""
    backbone = cfg.MODEL.BACKBONE
    return f"{backbone.NAME}{', from ' + backbone.PATH if backbone.PATH else ''}"


def _rounded(values):
    return [round(float(v), 8) for v in values]


def check_input_matches_backbone(cfg, clip_model):
    """INPUT.SIZE / PIXEL_MEAN / PIXEL_STD must be what the backbone's weights were trained with."""
    name = cfg.MODEL.BACKBONE.NAME or cfg.MODEL.BACKBONE.PATH  # a file alone needs no NAME
    resolution = clip_model.visual.input_resolution
    if cfg.INPUT.SIZE[0] != resolution or cfg.INPUT.SIZE[1] != resolution:
        raise ConfigError(
            f"INPUT.SIZE is {tuple(cfg.INPUT.SIZE)} but {name} expects {resolution}x{resolution} images; "
            f"set INPUT.SIZE ({resolution}, {resolution})"
        )
    for key, expected in (("PIXEL_MEAN", clip_model.image_mean), ("PIXEL_STD", clip_model.image_std)):
        given = getattr(cfg.INPUT, key)
        if len(given) != len(expected) or any(
            abs(float(a) - float(b)) > NORMALISATION_TOLERANCE for a, b in zip(given, expected)
        ):
            raise ConfigError(
                f"INPUT.{key} is {_rounded(given)} but {name} was trained with {_rounded(expected)}; "
                f"set INPUT.PIXEL_MEAN {_rounded(clip_model.image_mean)} and "
                f"INPUT.PIXEL_STD {_rounded(clip_model.image_std)}"
            )


def load_frozen_clip(cfg, precision):
    """CLIP from MODEL.BACKBONE.{NAME,PATH}, cast for `precision`, all parameters frozen."""
    print(f"Loading CLIP (backbone: {backbone_label(cfg)})")
    clip_model = load_clip_to_cpu(cfg)
    check_input_matches_backbone(cfg, clip_model)
    if precision.mode == "fp16":
        convert_weights(clip_model)  # open_clip's weights load in fp32; OpenAI's are fp16 already
    precision.prepare_clip(clip_model)
    clip_model.requires_grad_(False)
    clip_model.transformer.gradient_checkpointing = cfg.TRAIN.TEXT_CHECKPOINTING
    return clip_model.eval()
