"""CoOp (Zhou et al., IJCV 2022): learn the prompt's context words end to end.

Config node TRAINER.COOP: N_CTX, CSC, CTX_INIT, PREC, CLASS_TOKEN_POSITION.
"""
from yacs.config import CfgNode as CN

from dassl.config import register_cfg_extension
from dassl.engine import TRAINER_REGISTRY

from trainers.common import PromptCLIPTrainer, PromptedCLIP, PromptLearner, check_class_token_position
from trainers.common.feature_server import EVAL_INPUT_FEATURES


def add_coop_cfg(cfg):
    """TRAINER.COOP with upstream defaults (shared by CoOp and KgCoOp); idempotent."""
    if "COOP" in cfg.TRAINER:
        return
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16
    cfg.TRAINER.COOP.CSC = False
    cfg.TRAINER.COOP.CTX_INIT = ""
    cfg.TRAINER.COOP.PREC = "fp16"
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"


register_cfg_extension(add_coop_cfg)


class CoOpCLIP(PromptedCLIP):
    """Logits between the image and the learned prompts of every class."""

    eval_image_input = EVAL_INPUT_FEATURES

    def forward(self, image, labels=None, frozen_features=None):
        training = labels is not None
        image_features, visual_output = self.encode_image(image, training, frozen_features)
        text_features, loss_terms = self.refine_text_features(
            self.learned_text_features(), image_features, visual_output, labels
        )
        logits = self.logits(image_features, text_features)
        return (logits, loss_terms) if training else logits


def build_coop_prompt_learner(cfg, classnames, clip_model):
    node = cfg.TRAINER.COOP
    return PromptLearner(
        classnames,
        clip_model,
        n_ctx=node.N_CTX,
        ctx_init=node.CTX_INIT,
        csc=node.CSC,
        class_token_position=node.CLASS_TOKEN_POSITION,
    )


@TRAINER_REGISTRY.register()
class CoOp(PromptCLIPTrainer):
    cfg_node = "COOP"

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_class_token_position(cfg.TRAINER.COOP.CLASS_TOKEN_POSITION, "TRAINER.COOP.CLASS_TOKEN_POSITION")

    def build_custom_clip(self, cfg, classnames, clip_model):
        learner = build_coop_prompt_learner(cfg, classnames, clip_model)
        return CoOpCLIP(clip_model, learner, text_plugin=self.build_text_plugin(cfg, clip_model))
