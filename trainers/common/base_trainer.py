"""Base trainer for "frozen CLIP + learnable prompt module" methods: the one trainer contract.

A method supplies:
- `cfg_node` (the TRAINER.<node> holding PREC; its defaults come from a
  registered cfg extension) and `check_cfg` (call super(): precision and the
  backbone are checked there), raising the one-line config error before the
  dataset is read;
- `build_custom_clip`, the model factory: it returns the complete model
  (a PromptedCLIP) for these classes, built with its text-feature plug-in
  (`self.build_text_plugin`, called after the method's own modules) and its
  frozen class features (`self.frozen_class_features`, on the run's device);
- optionally: extra loss terms (the model's forward returns them),
  `trainable_modules` (several learnable parts, each with its own optimizer),
  `build_optimizer_and_scheduler` / `build_scheduler` (per-part settings),
  `training_inputs` (extra forward arguments per batch),
  `ignored_checkpoint_prefixes` and `accepts_text_plugin`.
The base does the rest: precision, freezing, optimizers, DDP under torchrun, the training step (CE plus the
model's extra loss terms, non-finite check, per-epoch LR step at the last
batch), checkpoints and resume (TrainerBase) and loading prompt weights
trained on other classes. Its `feature_server` (a FeatureServer, held, not
inherited) serves the frozen image features: cached at evaluation
(TEST.FEATURE_CACHE) and cached augmented views in training
(TRAIN.CACHED_VIEWS); the model receives them as the `frozen_features`
argument of its forward. The class chain stays shallow: PromptCLIPTrainer ->
TrainerX -> SimpleTrainer -> TrainerBase.
"""
import torch.nn.functional as F
from torch import nn

from dassl.config import ConfigError
from dassl.engine import TrainerX
from dassl.engine.distributed import wrap_for_training
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer

from .backbone import check_backbone, load_frozen_clip
from .checkpoint import checkpoint_file, load_module_checkpoint
from .feature_server import EVAL_INPUT_FEATURES, FeatureServer, forward_arguments
from .frozen_text import frozen_text_features
from .precision import Precision, check_precision, ensure_finite_loss
from .prompt_learner import check_context_cfg
from .text_plugins import build_text_plugin


class PromptCLIPTrainer(TrainerX):
    cfg_node = "COOP"
    model_name = "prompt_learner"
    ignored_checkpoint_prefixes = ()
    log_loss_terms = False  # also log each extra loss term beside the total
    accepts_text_plugin = True  # False: the model has no per-class text features for a plug-in to refine

    @classmethod
    def precision_mode(cls, cfg):
        return cfg.TRAINER[cls.cfg_node].PREC

    def check_cfg(self, cfg):
        check_precision(self.precision_mode(cfg), f"TRAINER.{self.cfg_node}.PREC")
        node = cfg.TRAINER[self.cfg_node]
        if "N_CTX" in node and "CTX_INIT" in node:
            check_context_cfg(node, f"TRAINER.{self.cfg_node}")
        check_backbone(cfg)

    def build_custom_clip(self, cfg, classnames, clip_model):
        """Return the method's complete PromptedCLIP for these classes (plug-in and frozen features included)."""
        raise NotImplementedError

    def frozen_class_features(self, clip_model, template, classnames):
        """Frozen text features of `template` for every class, encoded on the run's device.

        The factory runs while the model is still on the CPU; the features are
        encoded where the model will run (the frozen CLIP moves there now, as
        build_model would move it next), so they equal the ones encoded after
        the move, whichever device builds the model.
        """
        return frozen_text_features(clip_model.to(self.device), template, classnames)

    def build_scheduler(self, optimizer):
        return build_lr_scheduler(optimizer, self.cfg.OPTIM)

    def trainable_modules(self, model):
        """Name -> learnable part of `model`; each is registered with its own optimizer and scheduler.

        MODEL.INIT_WEIGHTS initialises the part named `model_name`.
        """
        return {self.model_name: model.prompt_learner}

    def build_optimizer_and_scheduler(self, name, module):
        """Optimizer and scheduler of the registered part `name` (cfg.OPTIM unless a method says otherwise)."""
        optimizer = build_optimizer(module, self.cfg.OPTIM)
        return optimizer, self.build_scheduler(optimizer)

    @property
    def custom_clip(self):
        """The model without its DistributedDataParallel wrapper (torchrun)."""
        wrapped = isinstance(self.model, nn.parallel.DistributedDataParallel)
        return self.model.module if wrapped else self.model

    def build_model(self):
        cfg = self.cfg
        self.precision = Precision(self.precision_mode(cfg), self.device)
        clip_model = load_frozen_clip(cfg, self.precision)
        print(f"Building {type(self).__name__} (PREC={self.precision.mode})")
        self._text_plugin_built = False
        if not self.accepts_text_plugin:
            self.build_text_plugin(cfg, clip_model)  # refuses an enabled plug-in before anything is built
        model = self.build_custom_clip(cfg, self.dm.dataset.classnames, clip_model)
        if not self._text_plugin_built:
            raise TypeError(
                f"{type(self).__name__}.build_custom_clip must give its model self.build_text_plugin(cfg, clip_model) "
                "(or the trainer must set accepts_text_plugin = False)"
            )
        parts = self.trainable_modules(model)
        model.requires_grad_(False)
        for part in parts.values():
            part.requires_grad_(True)
        if model.text_plugin is not None:
            model.text_plugin.requires_grad_(True)
        if cfg.MODEL.INIT_WEIGHTS:
            load_module_checkpoint(parts[self.model_name], cfg.MODEL.INIT_WEIGHTS, self.ignored_checkpoint_prefixes)
        trainable = [name for name, p in model.named_parameters() if p.requires_grad]
        print(f"Parameters to be updated: {sorted(trainable)}")
        model.to(self.device)
        self.model = model
        for name, part in parts.items():
            self._register_trainable(name, part)
        if model.text_plugin is not None:
            self._register_trainable(model.text_plugin.model_name, model.text_plugin)
        self.scaler = self.precision.make_grad_scaler()
        self.feature_server = FeatureServer(cfg, model.clip_model, self.precision, self.device, model.eval_image_input)
        self.model = wrap_for_training(model, self.device)

    def build_text_plugin(self, cfg, clip_model):
        """The enabled text-feature plug-in, or None; refused for a model without per-class text features."""
        plugin = build_text_plugin(cfg, clip_model, self.precision)
        self._text_plugin_built = True
        if plugin is not None and not self.accepts_text_plugin:
            raise ConfigError(
                f"{type(self).__name__} has no per-class text features for a text-feature plug-in; disable the plug-in"
            )
        return plugin

    def _register_trainable(self, name, module):
        self.register_model(name, module, *self.build_optimizer_and_scheduler(name, module))

    def compute_loss(self, logits, labels, loss_terms):
        """Cross-entropy (in fp32) plus the model's weighted extra terms."""
        loss = F.cross_entropy(logits.float(), labels)
        for term in loss_terms.values():
            loss = loss + term.float().mean()
        return loss

    def training_inputs(self, batch):
        """Extra arguments of the model's training forward after (image, labels); none by default."""
        return ()

    def forward_backward(self, batch):
        input, label = self.parse_batch_train(batch)
        image, served = forward_arguments(input)
        with self.precision.autocast():
            logits, loss_terms = self.model(image, label, *self.training_inputs(batch), **served)
            loss = self.compute_loss(logits, label, loss_terms)
        ensure_finite_loss(
            loss, self.epoch, self.max_epoch, self.batch_idx, self.num_batches,
            self.precision.mode, f"TRAINER.{self.cfg_node}.PREC",
        )
        self._backward_and_step(loss)
        summary = {"loss": loss.item(), "acc": compute_accuracy(logits, label)[0].item()}
        if self.log_loss_terms:
            summary.update({f"loss_{name}": term.item() for name, term in loss_terms.items()})
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary

    def _backward_and_step(self, loss):
        if self.scaler is None:
            self.model_backward_and_update(loss)
            return
        self.model_zero_grad()
        self.scaler.scale(loss).backward()
        for name in self.get_model_names():
            self.scaler.step(self._optims[name])
        self.scaler.update()

    def model_inference(self, input):
        image, served = forward_arguments(input)
        with self.precision.autocast():
            return self.model(image, **served).float()

    def evaluation_batches(self, data_loader, split):
        return self.feature_server.evaluation_batches(
            data_loader, split, lambda: self.evaluation_loader(data_loader, split), self.parse_batch_test
        )

    def before_train(self):
        super().before_train()
        n_views = self.cfg.TRAIN.CACHED_VIEWS
        if n_views > 0:
            self._check_cached_views_apply()
            self.train_loader_x = self.feature_server.cache_training_views(self.dm.train_loader_x, n_views)

    def _check_cached_views_apply(self):
        model = self.custom_clip
        plugin_needs_images = model.text_plugin is not None and bool(model.text_plugin.visual_request)
        if model.eval_image_input != EVAL_INPUT_FEATURES or plugin_needs_images:
            raise ConfigError(
                f"TRAIN.CACHED_VIEWS needs a model whose training images only go through the frozen image tower "
                f"(CoOp, KgCoOp, CoCoOp without TextRefiner); {type(self).__name__} is not one: set TRAIN.CACHED_VIEWS 0"
            )

    def mid_pass_state_unsupported(self):
        if self.cfg.TRAIN.CACHED_VIEWS > 0:
            return "TRAIN.CACHED_VIEWS draws views from a generator that is not saved"
        return super().mid_pass_state_unsupported()

    def parse_batch_train(self, batch):
        """(images, labels), or (ServedImageFeatures, labels) for a batch of cached-view indices."""
        if "img" in batch:
            return super().parse_batch_train(batch)
        return self.feature_server.training_batch(batch)

    def load_model(self, directory, epoch=None):
        """Load every registered module; class-dependent buffers are rebuilt, not loaded."""
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        for name in self.get_model_names():
            path = checkpoint_file(directory, name, epoch)
            loaded_epoch = load_module_checkpoint(self._models[name], path, self.ignored_checkpoint_prefixes)
            print(f"Loading weights to {name} from {path} (epoch = {loaded_epoch})")
