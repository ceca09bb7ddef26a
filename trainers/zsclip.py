"""Zero-shot CLIP: classify with the frozen text features of hand-written prompts.

ZeroshotCLIP uses the dataset's CoOp template; ZeroshotCLIP2 averages the
normalised features of an ImageNet template ensemble plus (except on ImageNet
itself) the dataset's template. The ensemble depends on the backbone family
(trainers/common/templates.py): CLIP's 7 selected templates on OpenAI
backbones (CoOp's numbers), open_clip's 80 ImageNet templates on open_clip
ones; TRAINER.ZSCLIP.TEMPLATES chooses another set for either trainer, and the
log names the set and the backbone. Precision follows TRAINER.COOP.PREC (the
CoOp configs are used for them). Nothing is trained: train.py evaluates it
with or without --eval-only.
"""
import torch
from yacs.config import CfgNode as CN

from dassl.config import ConfigError, register_cfg_extension
from dassl.config.checks import check_choice
from dassl.engine import TRAINER_REGISTRY, TrainerX

from clip import open_clip_adapter
from trainers.common import Precision, check_precision, frozen_text_features, load_frozen_clip, normalize
from trainers.common.backbone import backbone_family, backbone_label, check_backbone
from trainers.common.feature_server import EVAL_INPUT_FEATURES, FeatureServer, ServedImageFeatures
from trainers.common.templates import (
    COOP_TEMPLATES,
    DATASET_SET,
    DEFAULT_ENSEMBLE,
    IMAGENET_80_SET,
    TEMPLATE_SETS,
    zero_shot_templates,
)

# CoOp's name for the per-dataset zero-shot templates (keyed by DATASET.NAME).
CUSTOM_TEMPLATES = COOP_TEMPLATES
TEMPLATES_KEY = "TRAINER.ZSCLIP.TEMPLATES"


@register_cfg_extension
def add_zero_shot_cfg(cfg):
    """TRAINER.ZSCLIP.TEMPLATES: the template set ("" = the trainer's default for the backbone family)."""
    cfg.TRAINER.ZSCLIP = CN()
    cfg.TRAINER.ZSCLIP.TEMPLATES = ""


def check_template_set(set_name):
    """A known set, and open_clip installed when the set is open_clip's."""
    check_choice(TEMPLATES_KEY, set_name, TEMPLATE_SETS)
    if set_name == IMAGENET_80_SET and not open_clip_adapter.is_installed():
        raise ConfigError(
            f"{TEMPLATES_KEY} {IMAGENET_80_SET} reads the templates from the open_clip package, which is not "
            f"installed; install it with {open_clip_adapter.INSTALL_HINT} or choose another set"
        )


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(TrainerX):
    cfg_node = "COOP"  # the config node holding PREC, as every trainer names it

    def check_cfg(self, cfg):
        check_precision(cfg.TRAINER.COOP.PREC, "TRAINER.COOP.PREC")
        check_backbone(cfg)
        if cfg.TRAINER.ZSCLIP.TEMPLATES:
            check_template_set(cfg.TRAINER.ZSCLIP.TEMPLATES)

    def default_template_set(self, family):
        """The set used when TRAINER.ZSCLIP.TEMPLATES is empty."""
        return DATASET_SET

    def template_set(self, cfg, family):
        """The chosen set, and why: the config key, or this trainer's default for the backbone family."""
        if cfg.TRAINER.ZSCLIP.TEMPLATES:
            return cfg.TRAINER.ZSCLIP.TEMPLATES, f"set by {TEMPLATES_KEY}"
        return self.default_template_set(family), f"{type(self).__name__}'s default on {family} backbones"

    def prompt_templates(self, cfg):
        """The templates whose (averaged) text features classify; the log line names the set and the backbone."""
        family = backbone_family(cfg)
        set_name, reason = self.template_set(cfg, family)
        templates = zero_shot_templates(set_name, cfg.DATASET.NAME)
        print(
            f"Zero-shot templates: {set_name} ({reason}) for backbone {backbone_label(cfg)} ({family}), "
            f"{len(templates)} template(s): {templates}"
        )
        return templates

    def build_model(self):
        cfg = self.cfg
        self.precision = Precision(cfg.TRAINER.COOP.PREC, self.device)
        self.clip_model = load_frozen_clip(cfg, self.precision).to(self.device)
        templates = self.prompt_templates(cfg)
        self.text_features = frozen_text_features(self.clip_model, templates, self.dm.dataset.classnames)
        self.feature_server = FeatureServer(cfg, self.clip_model, self.precision, self.device, EVAL_INPUT_FEATURES)

    def evaluation_batches(self, data_loader, split):
        return self.feature_server.evaluation_batches(
            data_loader, split, lambda: self.evaluation_loader(data_loader, split), self.parse_batch_test
        )

    def model_inference(self, input):
        with torch.no_grad(), self.precision.autocast():
            if isinstance(input, ServedImageFeatures):
                image_features = normalize(input.features)
            else:
                image_features = normalize(self.clip_model.encode_image(input.type(self.clip_model.dtype)))
            logits = self.clip_model.logit_scale.exp() * image_features @ self.text_features.t()
        return logits.float()

    def load_model(self, directory, epoch=None):
        if directory:
            print(f"{type(self).__name__} has no learned weights; ignoring --model-dir {directory}")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    def default_template_set(self, family):
        return DEFAULT_ENSEMBLE[family]
