"""Plug-ins that transform a host's per-class text features (e.g. TextRefiner).

Every host (CoOp, KgCoOp, CoCoOp, DPT) calls `PromptedCLIP.refine_text_features`
once, at the point where its normalised class text features are ready; that is
the only place a plug-in acts. A plug-in module is registered with the host
trainer under its own `model_name`, with its own optimizer and scheduler.
"""
from torch import nn

from dassl.config import ConfigError

_PLUGIN_BUILDERS = []


class TextFeaturePlugin(nn.Module):
    """Base class: turns (text features, image features) into refined text features.

    `visual_request` names the extra outputs the plug-in needs from
    `clip_model.visual.forward_features` in training (e.g.
    `{"tokens": "ln_post_proj", "cls_attention": True}`); the host then passes
    that `VisualOutput` along. forward() returns (text features, loss terms),
    the terms being already-weighted scalars that the trainer adds to the loss.
    """

    model_name = "text_plugin"
    visual_request = {}
    class_dependent_keys = ()

    def forward(self, text_features, image_features, visual_output, labels):
        raise NotImplementedError


def register_text_plugin(builder):
    """Register `builder(cfg, clip_model, precision) -> TextFeaturePlugin | None`.

    Returns the builder so it can be used as a decorator. A builder returns
    None when its config switch is off.
    """
    _PLUGIN_BUILDERS.append(builder)
    return builder


def build_text_plugin(cfg, clip_model, precision):
    """The one enabled plug-in for this run, or None."""
    plugins = [plugin for plugin in (build(cfg, clip_model, precision) for build in _PLUGIN_BUILDERS) if plugin]
    if len(plugins) > 1:
        names = ", ".join(type(plugin).__name__ for plugin in plugins)
        raise ConfigError(f"several text-feature plug-ins are enabled ({names}); enable at most one")
    return plugins[0] if plugins else None
