"""CoCoOp (Zhou et al., CVPR 2022): conditional prompts. A small meta-net maps
each image feature to one bias added to every context vector, so each image
gets its own prompts for all classes.

Config node TRAINER.COCOOP: N_CTX, CTX_INIT, PREC, TEXT_CHUNK. The text
features of a whole batch (B x n_cls prompts) go through the text tower in
batched passes (equal to upstream's per-image loop). TEXT_CHUNK 0 (default)
sizes the evaluation passes to the free memory of the device (100 x 1000
prompts on ImageNet must fit, in as few passes as they can); training runs
one pass, since it keeps every chunk's activations for the backward pass
anyway. TEXT_CHUNK N > 0 fixes at most N sequences per pass.
"""
from collections import OrderedDict

from torch import nn
from yacs.config import CfgNode as CN

from dassl.config import ConfigError, register_cfg_extension
from dassl.engine import TRAINER_REGISTRY

from trainers.common import PromptCLIPTrainer, PromptedCLIP, PromptLearner, normalize
from trainers.common.feature_server import EVAL_INPUT_FEATURES


def add_cocoop_cfg(cfg):
    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"
    cfg.TRAINER.COCOOP.TEXT_CHUNK = 0


register_cfg_extension(add_cocoop_cfg)


def build_meta_net(vis_dim, ctx_dim):
    """vis_dim -> vis_dim // 16 -> ctx_dim, with upstream's parameter names."""
    hidden = max(vis_dim // 16, 1)
    return nn.Sequential(
        OrderedDict(
            [
                ("linear1", nn.Linear(vis_dim, hidden)),
                ("relu", nn.ReLU(inplace=True)),
                ("linear2", nn.Linear(hidden, ctx_dim)),
            ]
        )
    )


class ConditionalPromptLearner(PromptLearner):
    """Generic context (class token at the end) shifted per image by the meta-net."""

    def __init__(self, classnames, clip_model, n_ctx, ctx_init):
        super().__init__(classnames, clip_model, n_ctx=n_ctx, ctx_init=ctx_init)
        self.meta_net = build_meta_net(clip_model.visual.output_dim, self.ctx_dim).to(clip_model.dtype)

    def forward(self, image_features):
        """(B, vis_dim) normalised image features -> prompts (B, n_cls, seq_len, D)."""
        bias = self.meta_net(image_features.type(self.ctx.dtype))
        ctx_shifted = self.ctx.unsqueeze(0) + bias.unsqueeze(1)
        return self.assemble(ctx_shifted.unsqueeze(1).expand(-1, self.n_cls, -1, -1))


class CoCoOpCLIP(PromptedCLIP):
    eval_image_input = EVAL_INPUT_FEATURES

    def forward(self, image, labels=None, frozen_features=None):
        training = labels is not None
        image_features, visual_output = self.encode_image(image, training, frozen_features)
        prompts = self.prompt_learner(image_features)
        text_features = normalize(self.encode_prompts(prompts, self.prompt_learner.eot_indices))
        text_features, loss_terms = self.refine_text_features(text_features, image_features, visual_output, labels)
        logits = self.logits(image_features, text_features)
        return (logits, loss_terms) if training else logits


@TRAINER_REGISTRY.register()
class CoCoOp(PromptCLIPTrainer):
    cfg_node = "COCOOP"

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        if cfg.TRAINER.COCOOP.TEXT_CHUNK < 0:
            raise ConfigError(
                "TRAINER.COCOOP.TEXT_CHUNK must be >= 0 (0 = text passes sized to the free memory, "
                f"N = at most N prompt sequences per pass), got {cfg.TRAINER.COCOOP.TEXT_CHUNK}; "
                "set it in the trainer config or with `TRAINER.COCOOP.TEXT_CHUNK 0` on the command line"
            )

    def build_custom_clip(self, cfg, classnames, clip_model):
        node = cfg.TRAINER.COCOOP
        learner = ConditionalPromptLearner(classnames, clip_model, node.N_CTX, node.CTX_INIT)
        return CoCoOpCLIP(clip_model, learner, node.TEXT_CHUNK, self.build_text_plugin(cfg, clip_model))
