"""Zero-shot CLIP: classify with the frozen text features of hand-written prompts.

ZeroshotCLIP uses the dataset's CoOp template; ZeroshotCLIP2 averages the
normalised features of CLIP's 7 selected ImageNet templates plus (except on
ImageNet itself) the dataset's template. Precision follows TRAINER.COOP.PREC
(the CoOp configs are used for them). Nothing is trained: train.py evaluates it with or without --eval-only.
"""
import torch

from dassl.engine import TRAINER_REGISTRY, TrainerX

from datasets.templates import IMAGENET_TEMPLATES_SELECT, get_template
from trainers.common import Precision, check_precision, frozen_text_features, load_frozen_clip, normalize
from trainers.common.backbone import check_backbone
from trainers.common.frozen_eval import EVAL_INPUT_FEATURES, FrozenFeatureEvaluation, ServedImageFeatures


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(FrozenFeatureEvaluation, TrainerX):
    cfg_node = "COOP"  # the config node holding PREC, as every trainer names it

    def check_cfg(self, cfg):
        check_precision(cfg.TRAINER.COOP.PREC, "TRAINER.COOP.PREC")
        check_backbone(cfg)

    def prompt_templates(self, cfg):
        """The templates whose (averaged) text features classify."""
        return [get_template(cfg.DATASET.NAME, kind="coop")]

    def build_model(self):
        cfg = self.cfg
        self.precision = Precision(cfg.TRAINER.COOP.PREC, self.device)
        self.clip_model = load_frozen_clip(cfg, self.precision).to(self.device)
        templates = self.prompt_templates(cfg)
        print(f"Zero-shot prompts: {templates}")
        self.text_features = frozen_text_features(self.clip_model, templates, self.dm.dataset.classnames)

    def frozen_eval_input(self):
        return EVAL_INPUT_FEATURES

    def frozen_image_tower(self):
        return self.clip_model

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
    def prompt_templates(self, cfg):
        templates = list(IMAGENET_TEMPLATES_SELECT)
        if cfg.DATASET.NAME != "ImageNet":
            templates.append(get_template(cfg.DATASET.NAME, kind="coop"))
        return templates
