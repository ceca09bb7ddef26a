"""AnchoredCoOp: a new method on the trainer contract, in about 60 lines (docs/new_method.md).

The idea: CoOp whose context vectors are pulled back toward their initial
word embeddings, loss = CE + W * mean_i ||ctx_i - ctx0_i||^2, so that a few
shots cannot drag the prompt far from language CLIP knows. W = 0 is CoOp.

    python train.py --import docs/examples/anchored_coop.py --trainer AnchoredCoOp \\
        --config-file configs/trainers/CoOp/vit_b16_ep50.yaml ... TRAINER.ANCHORED.W 0.5
"""
from yacs.config import CfgNode as CN

from dassl.config import ConfigError, register_cfg_extension
from dassl.engine import TRAINER_REGISTRY
from trainers.common import PromptCLIPTrainer, PromptLearner
from trainers.coop import CoOpCLIP


@register_cfg_extension
def add_anchored_cfg(cfg):
    """1. The config node and its defaults: every key a user may override on the command line."""
    cfg.TRAINER.ANCHORED = CN()
    cfg.TRAINER.ANCHORED.N_CTX = 4  # used when CTX_INIT is ""
    cfg.TRAINER.ANCHORED.CTX_INIT = "a photo of a"
    cfg.TRAINER.ANCHORED.PREC = "fp16"  # fp16, fp32, amp or bf16: the base does the rest
    cfg.TRAINER.ANCHORED.W = 1.0


class AnchoredCoOpCLIP(CoOpCLIP):
    """2. The model, complete when built: CoOp's forward plus one extra loss term in training."""

    def __init__(self, clip_model, prompt_learner, weight, text_plugin):
        super().__init__(clip_model, prompt_learner, text_plugin=text_plugin)
        self.weight = weight
        # rebuilt from the config on every run (not checkpointed): the same words, or the same seed
        self.register_buffer("ctx_start", prompt_learner.ctx.detach().clone(), persistent=False)

    def forward(self, image, labels=None, frozen_features=None):  # features served from a cache, or None
        if labels is None:
            return super().forward(image, frozen_features=frozen_features)
        logits, loss_terms = super().forward(image, labels, frozen_features)
        drift = (self.prompt_learner.ctx.float() - self.ctx_start.float()).pow(2).sum(-1).mean()
        return logits, {**loss_terms, "anchor": self.weight * drift}


@TRAINER_REGISTRY.register()
class AnchoredCoOp(PromptCLIPTrainer):
    """3. The trainer: its node, its checks and its model factory. Precision, freezing, the
    optimiser, caches, DDP, checkpoints, resume and evaluation come from the base."""

    cfg_node = "ANCHORED"
    log_loss_terms = True  # the log shows loss_anchor beside the total

    def check_cfg(self, cfg):
        super().check_cfg(cfg)  # PREC, CTX_INIT / N_CTX and the backbone, before the dataset is read
        weight = cfg.TRAINER.ANCHORED.W  # a float: the config already refused other types
        if not weight >= 0:
            raise ConfigError(f"TRAINER.ANCHORED.W must be >= 0 (0 is CoOp), got {weight!r}")

    def build_custom_clip(self, cfg, classnames, clip_model):
        node = cfg.TRAINER.ANCHORED
        learner = PromptLearner(classnames, clip_model, n_ctx=node.N_CTX, ctx_init=node.CTX_INIT)
        plugin = self.build_text_plugin(cfg, clip_model)  # e.g. TextRefiner when enabled, else None
        return AnchoredCoOpCLIP(clip_model, learner, float(node.W), plugin)
