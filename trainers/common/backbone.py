"""Loading the frozen CLIP backbone once per run, in the run's precision."""
import clip

from dassl.config import ConfigError, register_cfg_extension
from dassl.utils.errors import BackboneLoadError


@register_cfg_extension
def add_text_checkpointing_cfg(cfg):
    """TRAIN.TEXT_CHECKPOINTING: recompute the text tower's activations in backward (memory for many classes)."""
    cfg.TRAIN.TEXT_CHECKPOINTING = False


def load_frozen_clip(cfg, precision):
    """CLIP from MODEL.BACKBONE.{NAME,PATH}, cast for `precision`, all parameters frozen."""
    backbone = cfg.MODEL.BACKBONE
    print(f"Loading CLIP (backbone: {backbone.NAME}{', from ' + backbone.PATH if backbone.PATH else ''})")
    try:
        clip_model = clip.load_clip_to_cpu(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise BackboneLoadError(f"Cannot load the CLIP backbone (MODEL.BACKBONE.NAME / PATH): {error}") from error
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
