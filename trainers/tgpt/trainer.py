"""TGP-T's trainer: config node, checks, the WiSE-FT evaluation line, checkpoints by class name.

Config node TRAINER.TGPT: PREC (fp32 | amp | bf16), N_Q_CATEGORY, N_Q_CONTENT,
CTX_INIT, CONTENT_LOSS, INSERT_CLS, LABEL_SMOOTHING, WISEFT_RATIO. The model is
selected on val, never on test: the configs set DATASET.VAL_FROM_TRAIN 8, so a
split without a val list (ImageNet) validates on held-out training images.
The build, precision, DDP, checkpoints and resume are the base trainer's
(trainers.common.base_trainer); this module supplies the model factory and
the content-token targets of each batch.
"""
import torch
from yacs.config import CfgNode as CN

from dassl.config import ConfigError, register_cfg_extension
from dassl.engine import TRAINER_REGISTRY
from dassl.engine.distributed import gather_interleaved
from dassl.utils import load_checkpoint
from dassl.utils.errors import CheckpointMismatchError

from trainers.common import PromptCLIPTrainer, checkpoint_file, load_module_state

from .captions import image_descriptions
from .model import TGPTCLIP, TGPTPromptLearner, content_targets, mined_templates

TGPT_PRECISIONS = ("fp32", "amp", "bf16")


def add_tgpt_cfg(cfg):
    """TRAINER.TGPT with the spec's defaults."""
    cfg.TRAINER.TGPT = CN()
    cfg.TRAINER.TGPT.PREC = "fp32"
    cfg.TRAINER.TGPT.N_Q_CATEGORY = 32
    cfg.TRAINER.TGPT.N_Q_CONTENT = 64
    cfg.TRAINER.TGPT.CTX_INIT = "a photo of a"
    cfg.TRAINER.TGPT.CONTENT_LOSS = True
    cfg.TRAINER.TGPT.INSERT_CLS = False
    cfg.TRAINER.TGPT.LABEL_SMOOTHING = 0.1
    cfg.TRAINER.TGPT.WISEFT_RATIO = 0.5


register_cfg_extension(add_tgpt_cfg)


def check_tgpt_cfg(node):
    """Fail on TRAINER.TGPT values that cannot work, before CLIP is loaded."""
    if node.PREC not in TGPT_PRECISIONS:
        raise ConfigError(
            f"TRAINER.TGPT.PREC must be one of {', '.join(TGPT_PRECISIONS)}, got {node.PREC!r} "
            "(TGP-T trains fp32 parameters; amp and bf16 only change the compute dtype)"
        )
    for key in ("N_Q_CATEGORY", "N_Q_CONTENT"):
        if node[key] < 1:
            raise ConfigError(f"TRAINER.TGPT.{key} must be at least 1, got {node[key]}")
    if not 0.0 <= node.LABEL_SMOOTHING < 1.0:
        raise ConfigError(f"TRAINER.TGPT.LABEL_SMOOTHING must lie in [0, 1), got {node.LABEL_SMOOTHING}")
    if not 0.0 <= node.WISEFT_RATIO <= 1.0:
        raise ConfigError(f"TRAINER.TGPT.WISEFT_RATIO must lie in [0, 1], got {node.WISEFT_RATIO}")


def check_val_set(cfg, dataset):
    """TGP-T selects its model on val, never on test: refuse a val list that is the test list (spec 2.5)."""
    selects = not cfg.TEST.NO_TEST and cfg.TEST.FINAL_MODEL == "best_val"
    if selects and (not dataset.val or dataset.val is dataset.test):
        raise ConfigError(
            f"TGP-T selects its model on val, but {cfg.DATASET.NAME} has no val split and would validate on the "
            "test set; set DATASET.VAL_FROM_TRAIN 8 (as the TGPT configs do) to validate on held-out training images"
        )


class WiseFTEvaluator:
    """The run's evaluator scores the plain head; the WiSE-FT head's accuracy is one extra line after it.

    Under torchrun the WiSE-FT predictions of every rank's shard are gathered,
    as the run's evaluator gathers the plain ones.
    """

    def __init__(self, evaluator):
        self.evaluator = evaluator
        self.reset()

    def reset(self):
        self.evaluator.reset()
        self._hits = []

    def process(self, output, gt):
        plain, wiseft = output
        self.evaluator.process(plain, gt)
        self._hits.append(wiseft.argmax(dim=1).eq(gt).cpu())

    def evaluate(self):
        results = self.evaluator.evaluate()
        hits = gather_interleaved(torch.cat(self._hits) if self._hits else torch.zeros(0, dtype=torch.bool))
        accuracy = 100.0 * hits.sum().item() / hits.numel()
        print(f"* wiseft_accuracy: {accuracy:.2f}%")
        results["wiseft_accuracy"] = accuracy
        return results


def load_tgpt_checkpoint(learner, path):
    """Load a TGPT checkpoint for `learner`'s classes; returns (epoch, number of learned head rows used)."""
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("state_dict", {})
    recorded = state.get("_extra_state")
    if not isinstance(recorded, dict) or "classnames" not in recorded or "head" not in state:
        raise CheckpointMismatchError(f"{path} records no head rows with their class names; it was not written by the TGPT trainer")
    load_module_state(learner, state, path)
    used = learner.load_head_rows(state["head"], recorded["classnames"])
    return checkpoint.get("epoch"), used


@TRAINER_REGISTRY.register()
class TGPT(PromptCLIPTrainer):
    cfg_node = "TGPT"
    log_loss_terms = True
    accepts_text_plugin = False

    def __init__(self, cfg):
        self.content_token_targets = None
        super().__init__(cfg)
        self.evaluator = WiseFTEvaluator(self.evaluator)

    def check_cfg(self, cfg):
        check_tgpt_cfg(cfg.TRAINER.TGPT)
        if cfg.MODEL.INIT_WEIGHTS:
            raise ConfigError("TGPT does not read MODEL.INIT_WEIGHTS; evaluate a trained run with --model-dir instead")
        super().check_cfg(cfg)

    def build_custom_clip(self, cfg, classnames, clip_model):
        """TGPTCLIP for these classes; the zero-shot head is computed on the run's device."""
        node = cfg.TRAINER.TGPT
        learner = TGPTPromptLearner(
            clip_model.to(self.device),
            classnames,
            mined_templates(cfg.DATASET.NAME),
            n_category=node.N_Q_CATEGORY,
            n_content=node.N_Q_CONTENT,
            ctx_init=node.CTX_INIT,
            insert_cls=node.INSERT_CLS,
        )
        print(f"Trainable parameters: {sum(p.numel() for p in learner.parameters()):,}")
        return TGPTCLIP(clip_model, learner, node.LABEL_SMOOTHING, node.WISEFT_RATIO)

    def before_train(self):
        """Check the val set, then read the training images' descriptions: a problem stops the run before it starts."""
        check_val_set(self.cfg, self.dm.dataset)
        if self.cfg.TRAINER.TGPT.CONTENT_LOSS:
            train_x = self.dm.dataset.train_x
            descriptions = image_descriptions(
                self.dm.dataset, [item.impath for item in train_x], self.cfg.DATASET.ROOT, self.cfg.DATASET.NAME
            )
            self.content_token_targets = content_targets(descriptions, self.cfg.TRAINER.TGPT.N_Q_CONTENT)
            self.content_rows = {item.impath: row for row, item in enumerate(train_x)}
        super().before_train()

    def content_targets_of(self, impaths):
        if self.content_token_targets is None:
            return None
        rows = torch.tensor([self.content_rows[path] for path in impaths])
        return self.content_token_targets[rows].to(self.device)

    def training_inputs(self, batch):
        return (self.content_targets_of(batch["impath"]),)

    def model_inference(self, input):
        with self.precision.autocast():
            plain, wiseft = self.model(input)
        return plain.float(), wiseft.float()

    def load_model(self, directory, epoch=None):
        """Load the learned modules; head rows are matched to the current classes by name."""
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        path = checkpoint_file(directory, self.model_name, epoch)
        loaded_epoch, used = load_tgpt_checkpoint(self.custom_clip.prompt_learner, path)
        n_classes = len(self.custom_clip.prompt_learner.classnames)
        print(
            f"Loading weights to {self.model_name} from {path} (epoch = {loaded_epoch}); "
            f"learned head rows for {used} of {n_classes} classes, zero-shot rows for the rest"
        )
