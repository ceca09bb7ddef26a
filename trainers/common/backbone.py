"""Loading the frozen CLIP backbone once per run, in the run's precision."""
import contextlib

import clip

from dassl.config import ConfigError, register_cfg_extension
from dassl.utils.errors import BackboneLoadError


@register_cfg_extension
def add_text_checkpointing_cfg(cfg):
    """TRAIN.TEXT_CHECKPOINTING: recompute the text tower's activations in backward (memory for many classes)."""
    cfg.TRAIN.TEXT_CHECKPOINTING = False


@contextlib.contextmanager
def backbone_errors():
    """The loader's errors as one BackboneLoadError that names the config keys."""
    try:
        yield
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise BackboneLoadError(f"Cannot load the CLIP backbone (MODEL.BACKBONE.NAME / PATH): {error}") from error


@register_cfg_extension
def add_backbone_trust_cfg(cfg):
    """MODEL.BACKBONE.TRUST_TORCHSCRIPT: open a TorchScript PATH that is not an OpenAI release (runs its code)."""
    cfg.MODEL.BACKBONE.TRUST_TORCHSCRIPT = False


def check_backbone(cfg):
    """A checkpoint that is not there, or an untrusted TorchScript one, fails at config check, before
    the dataset is read (nothing is loaded)."""
    with backbone_errors():
        backbone = cfg.MODEL.BACKBONE
        clip.check_checkpoint_source(clip.backbone_checkpoint_source(backbone), backbone.TRUST_TORCHSCRIPT)


def load_frozen_clip(cfg, precision):
    """CLIP from MODEL.BACKBONE.{NAME,PATH}, cast for `precision`, all parameters frozen."""
    backbone = cfg.MODEL.BACKBONE
    print(f"Loading CLIP (backbone: {backbone.NAME}{', from ' + backbone.PATH if backbone.PATH else ''})")
    with backbone_errors():
        clip_model = clip.load_clip_to_cpu(cfg, trust_torchscript=backbone.TRUST_TORCHSCRIPT)
    resolution = clip_model.visual.input_resolution
    if cfg.INPUT.SIZE[0] != resolution or cfg.INPUT.SIZE[1] != resolution:
        raise ConfigError(
            f"INPUT.SIZE is {tuple(cfg.INPUT.SIZE)} but {backbone.NAME} expects {resolution}x{resolution} images; "
            f"set INPUT.SIZE ({resolution}, {resolution})"
        )
    precision.prepare_clip(clip_model)
    clip_model.requires_grad_(False)
    clip_model.transformer.gradient_checkpointing = cfg.TRAIN.TEXT_CHECKPOINTING
    return clip_model.eval()
