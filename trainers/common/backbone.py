"""Loading the frozen CLIP backbone once per run, in the run's precision."""
import clip


def load_frozen_clip(cfg, precision):
    """CLIP from MODEL.BACKBONE.{NAME,PATH}, cast for `precision`, all parameters frozen."""
    backbone = cfg.MODEL.BACKBONE
    print(f"Loading CLIP (backbone: {backbone.NAME}{', from ' + backbone.PATH if backbone.PATH else ''})")
    clip_model = clip.load_clip_to_cpu(cfg)
    resolution = clip_model.visual.input_resolution
    if cfg.INPUT.SIZE[0] != resolution or cfg.INPUT.SIZE[1] != resolution:
        raise ValueError(
            f"INPUT.SIZE is {tuple(cfg.INPUT.SIZE)} but {backbone.NAME} expects {resolution}x{resolution} images; "
            f"set INPUT.SIZE ({resolution}, {resolution})"
        )
    precision.prepare_clip(clip_model)
    clip_model.requires_grad_(False)
    return clip_model.eval()
