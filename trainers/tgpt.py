"""TGP-T (Tan et al., AAAI 2024): image-conditioned, text-supervised prompts with a zero-shot-initialised head.

Two query sets pass through one "Bonder" block each (self-attention, then
cross-attention to the frozen image tokens), giving per image one category
and one content prompt in token-embedding space. The text encoder sees those
two sequences per image, so its cost does not grow with the number of
classes. The prompts are supervised as tokens through CLIP's tied vocabulary
(towards "a photo of a {class}." and towards a description of the image), and
a linear head over rownorm([image feature; text feature]) classifies.

Config node TRAINER.TGPT: PREC (fp32 | amp | bf16), N_Q_CATEGORY, N_Q_CONTENT,
CTX_INIT, CONTENT_LOSS, INSERT_CLS, LABEL_SMOOTHING, WISEFT_RATIO. The model is
selected on val, never on test: the configs set DATASET.VAL_FROM_TRAIN 8, so a
split without a val list (ImageNet) validates on held-out training images.
"""
import json
import math
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

import clip
from clip.layers import attention_heads
from dassl.config import ConfigError, register_cfg_extension
from dassl.engine import TRAINER_REGISTRY
from dassl.utils import load_checkpoint
from dassl.utils.errors import CheckpointMismatchError

from trainers.common import (
    Precision,
    PromptCLIPTrainer,
    PromptedCLIP,
    build_text_plugin,
    checkpoint_file,
    load_frozen_clip,
    load_module_state,
    normalize,
)
from trainers.common.captions import image_descriptions
from trainers.common.prompt_learner import context_from_words
from trainers.common.templates import IMAGENET_FAMILY

TGPT_PRECISIONS = ("fp32", "amp", "bf16")
LOGIT_SCALE = math.exp(4.60517)
MINED_TEMPLATES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tgpt_mined_templates.json")
GENERIC_TEMPLATES = (
    "a photo of a {}.",
    "a good photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
)
SOS_ID, PERIOD_ID, EOT_ID = clip.tokenize(".")[0, :3].tolist()


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


class TGPTPrecision(Precision):
    """The shared fp32 / amp modes plus bf16 autocast (no loss scaling), all on fp32 parameters."""

    def __init__(self, mode, device):
        super().__init__("fp32" if mode == "bf16" else mode, device)
        self.mode = mode

    def prepare_clip(self, clip_model):
        return clip_model.float()

    def autocast(self):
        if self.mode == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return super().autocast()


def mined_templates(dataset_name):
    """The 21 mined templates of a dataset (ImageNet's for its variants), or a short generic list."""
    with open(MINED_TEMPLATES_FILE, encoding="utf-8") as f:
        table = json.load(f)
    key = "ImageNet" if dataset_name in IMAGENET_FAMILY else dataset_name
    if key in table and key != "_source":
        return list(table[key])
    print(
        f"No mined templates for dataset {dataset_name!r} in {MINED_TEMPLATES_FILE}; "
        f"TGP-T's head starts from {len(GENERIC_TEMPLATES)} generic templates instead"
    )
    return list(GENERIC_TEMPLATES)


def zero_shot_head(clip_model, templates, classnames, chunk_size=256):
    """rownorm([t_c; t_c]) with t_c the unnormalised mean over templates of the frozen text features.

    Templates take the raw class names, underscores included (as the reference).
    """
    device = clip_model.token_embedding.weight.device
    with torch.no_grad():
        per_template = []
        for template in templates:
            tokens = clip.tokenize([template.format(name) for name in classnames], truncate=True).to(device)
            per_template.append(torch.cat([clip_model.encode_text(chunk).float() for chunk in tokens.split(chunk_size)]))
        mean = torch.stack(per_template).mean(dim=0)
    return normalize(torch.cat([mean, mean], dim=-1))


def category_targets(classnames, n_positions):
    """Token ids at positions 1..n of "a photo of a {name}." ("_", "(", ")" read as spaces); 0 = ignored."""
    cleaned = [name.replace("_", " ").replace("(", " ").replace(")", " ") for name in classnames]
    tokens = clip.tokenize([f"a photo of a {name}." for name in cleaned], truncate=True)
    return tokens[:, 1 : 1 + n_positions]


def content_targets(descriptions, n_positions):
    """Token ids at positions 1..n of each description (truncated to CLIP's context); 0 = ignored."""
    return clip.tokenize(descriptions, truncate=True)[:, 1 : 1 + n_positions]


def discard_reference_draws(*shapes):
    """Draw (and drop) the default Linear inits the reference makes and then overwrites, to keep its RNG order."""
    for shape in shapes:
        nn.init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5))


class Bonder(nn.Module):
    """One pre-norm block: query self-attention, cross-attention to the image tokens, MLP.

    The cross-attention has no key/value projection: keys and values are the
    normalised image tokens themselves; one map over all channels, scaled by
    (width / heads) ** -0.5 as the reference.
    """

    def __init__(self, width, image_width):
        super().__init__()
        self.heads = attention_heads(width)
        self.scale = (width // self.heads) ** -0.5
        self.ln_self = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.self_out = nn.Linear(width, width)
        self.ln_query = nn.LayerNorm(width)
        self.ln_image = nn.LayerNorm(image_width)
        self.cross_out = nn.Linear(image_width, width)
        self.cross_query = nn.Linear(width, image_width, bias=False)
        self.ln_mlp = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, width)
        self.mlp_out = nn.Linear(width, width)

    def self_attention(self, queries):
        qkv = self.qkv(self.ln_self(queries)).unflatten(-1, (3, self.heads, -1)).movedim(-3, 0).transpose(-3, -2)
        attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.self_out(attended.transpose(-3, -2).flatten(-2))

    def cross_attention(self, queries, image_tokens):
        keys = self.ln_image(image_tokens)
        query = self.cross_query(self.ln_query(queries))
        weights = (query @ keys.transpose(-1, -2) * self.scale).softmax(dim=-1)
        return self.cross_out(weights @ keys)

    def forward(self, queries, image_tokens):
        """queries (n, width) shared or (B, n, width) per image; image tokens (B, T, image_width) -> (B, n, width)."""
        queries = queries + self.self_attention(queries)
        queries = queries + self.cross_attention(queries, image_tokens)
        return queries + self.mlp_out(F.gelu(self.mlp_in(self.ln_mlp(queries))))


class TGPTPromptLearner(nn.Module):
    """Everything TGP-T learns: both query sets, both Bonders and the linear head.

    The head rows belong to `classnames`, which the checkpoint records (extra
    state) so that a model trained on some classes can be evaluated on others.
    """

    class_dependent_keys = ("head", "_extra_state")

    def __init__(self, clip_model, classnames, templates, n_category=32, n_content=64, ctx_init="a photo of a", insert_cls=False):
        super().__init__()
        width = clip_model.token_embedding.embedding_dim
        image_width = clip_model.text_projection.shape[1]
        self.category_queries = nn.Parameter(torch.empty(n_category, width).normal_(std=0.02))
        self.content_queries = nn.Parameter(torch.empty(n_content, width).normal_(std=0.02))
        self.category_bonder = Bonder(width, image_width)
        self.content_bonder = Bonder(width, image_width)
        discard_reference_draws((clip_model.vocab_size, width), *[(len(classnames), 2 * image_width)] * 2)
        n_words = 0
        if ctx_init:
            words, _ = context_from_words(clip_model, ctx_init)
            n_words = words.shape[0]
            if n_words > n_category:
                raise ConfigError(f"CTX_INIT {ctx_init!r} has {n_words} words but N_Q_CATEGORY is {n_category}")
            with torch.no_grad():
                self.category_queries[:n_words] = words.float()
        self.insert_cls = insert_cls
        self.cls_slot = n_words
        if insert_cls:
            check_cls_insertion(n_words, n_category, n_content, width, image_width)
        self.classnames = list(classnames)
        head = zero_shot_head(clip_model, templates, self.classnames)
        self.head = nn.Parameter(head.clone())
        self.register_buffer("zero_shot_head", head, persistent=False)
        self.register_buffer("category_targets", category_targets(self.classnames, n_category), persistent=False)

    def get_extra_state(self):
        return {"classnames": list(self.classnames)}

    def set_extra_state(self, state):
        if list(state["classnames"]) != self.classnames:
            raise CheckpointMismatchError(
                "the checkpoint's head rows belong to other classes; load it with TGPT.load_model "
                "(eval-only with --model-dir), which maps rows by class name"
            )

    def load_head_rows(self, rows, row_classnames):
        """Learned rows for the classes `row_classnames` lists; the others keep their zero-shot rows."""
        learned = {name: row for name, row in zip(row_classnames, rows)}
        with torch.no_grad():
            self.head.copy_(self.zero_shot_head)
            for index, name in enumerate(self.classnames):
                if name in learned:
                    self.head[index] = learned[name].to(self.head)
        return sum(name in learned for name in self.classnames)

    def wiseft_head(self, ratio):
        return ratio * self.head + (1 - ratio) * self.zero_shot_head

    def queries(self, parameter, image_feature):
        """The shared queries, or per-image copies whose CTX_INIT-end slot holds the image feature (INSERT_CLS)."""
        if not self.insert_cls:
            return parameter
        queries = parameter.unsqueeze(0).repeat(image_feature.shape[0], 1, 1)
        queries[:, self.cls_slot] = image_feature.detach().type(queries.dtype)
        return queries

    def forward(self, image_tokens, image_feature):
        """(category prompts B x n_cat x width, content prompts B x n_con x width)."""
        category = self.category_bonder(self.queries(self.category_queries, image_feature), image_tokens)
        content = self.content_bonder(self.queries(self.content_queries, image_feature), image_tokens)
        return category, content


def check_cls_insertion(slot, n_category, n_content, width, image_width):
    if slot >= min(n_category, n_content):
        raise ConfigError(
            f"INSERT_CLS writes the image feature into query slot {slot} (after the CTX_INIT words), "
            f"which needs N_Q_CATEGORY and N_Q_CONTENT above {slot}"
        )
    if width != image_width:
        raise ConfigError(
            f"INSERT_CLS writes the {image_width}-d image feature into {width}-d queries; it needs a backbone whose "
            "embedding and text widths are equal (as ViT-B/16); set TRAINER.TGPT.INSERT_CLS False"
        )


class TGPTCLIP(PromptedCLIP):
    """Frozen CLIP + TGPTPromptLearner: logits (and, in training, the two token losses)."""

    def __init__(self, clip_model, prompt_learner, label_smoothing=0.1, wiseft_ratio=0.5):
        super().__init__(clip_model, prompt_learner)
        self.label_smoothing = label_smoothing
        self.wiseft_ratio = wiseft_ratio

    def text_sequences(self, prompts):
        """[SOS; prompts; "."; EOT] per image, cut after EOT (exact under the causal mask)."""
        vocabulary = self.clip_model.token_embedding.weight
        batch, n_prompts, width = prompts.shape
        frame = vocabulary[[SOS_ID, PERIOD_ID, EOT_ID]]
        sequences = torch.cat(
            [
                frame[:1].expand(batch, 1, width),
                prompts.type(vocabulary.dtype),
                frame[1:].expand(batch, 2, width),
            ],
            dim=1,
        )
        eot = torch.full((batch,), n_prompts + 2, dtype=torch.long, device=prompts.device)
        return sequences, eot

    def token_loss(self, prompts, targets):
        """Smoothed CE of the prompts read through the tied vocabulary; id 0 positions are ignored."""
        vocabulary_logits = prompts @ self.clip_model.token_embedding.weight.t().type(prompts.dtype)
        return F.cross_entropy(
            vocabulary_logits.flatten(0, 1).float(),
            targets.flatten().to(prompts.device),
            ignore_index=0,
            label_smoothing=self.label_smoothing,
        )

    def forward(self, image, labels=None, content_token_targets=None):
        """Training (labels given): (logits, loss terms). Evaluation: (plain logits, WiSE-FT logits)."""
        visual = self.clip_model.visual.forward_features(image.type(self.dtype), tokens="proj")
        category, content = self.prompt_learner(visual.tokens, visual.pooled)
        text = (self.encode_prompts(*self.text_sequences(category)) + self.encode_prompts(*self.text_sequences(content))) / 2
        features = normalize(torch.cat([visual.pooled, text.type(visual.pooled.dtype)], dim=-1))
        logits = LOGIT_SCALE * features @ self.prompt_learner.head.t().type(features.dtype)
        if labels is None:
            wiseft = self.prompt_learner.wiseft_head(self.wiseft_ratio)
            return logits, LOGIT_SCALE * features @ wiseft.t().type(features.dtype)
        terms = OrderedDict(category=self.token_loss(category, self.prompt_learner.category_targets[labels]))
        if content_token_targets is not None:
            terms["content"] = self.token_loss(content, content_token_targets)
        return logits, terms


class WiseFTEvaluator:
    """The run's evaluator scores the plain head; the WiSE-FT head's accuracy is one extra line after it."""

    def __init__(self, evaluator):
        self.evaluator = evaluator
        self.reset()

    def reset(self):
        self.evaluator.reset()
        self._correct = 0
        self._total = 0

    def process(self, output, gt):
        plain, wiseft = output
        self.evaluator.process(plain, gt)
        self._correct += int(wiseft.argmax(dim=1).eq(gt).sum().item())
        self._total += gt.shape[0]

    def evaluate(self):
        results = self.evaluator.evaluate()
        accuracy = 100.0 * self._correct / self._total
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

    def __init__(self, cfg):
        self.content_token_targets = None
        super().__init__(cfg)
        self.evaluator = WiseFTEvaluator(self.evaluator)

    def check_cfg(self, cfg):
        check_tgpt_cfg(cfg.TRAINER.TGPT)
        if cfg.MODEL.INIT_WEIGHTS:
            raise ConfigError("TGPT does not read MODEL.INIT_WEIGHTS; evaluate a trained run with --model-dir instead")

    def build_model(self):
        cfg, node = self.cfg, self.cfg.TRAINER.TGPT
        self.precision = TGPTPrecision(node.PREC, self.device)
        clip_model = load_frozen_clip(cfg, self.precision).to(self.device)
        if build_text_plugin(cfg, clip_model, self.precision) is not None:
            raise ConfigError("TGP-T has no per-class text features for a text-feature plug-in; disable the plug-in")
        print(f"Building TGPT (PREC={node.PREC})")
        learner = TGPTPromptLearner(
            clip_model,
            self.dm.dataset.classnames,
            mined_templates(cfg.DATASET.NAME),
            n_category=node.N_Q_CATEGORY,
            n_content=node.N_Q_CONTENT,
            ctx_init=node.CTX_INIT,
            insert_cls=node.INSERT_CLS,
        )
        self.model = TGPTCLIP(clip_model, learner, node.LABEL_SMOOTHING, node.WISEFT_RATIO).to(self.device)
        print(f"Trainable parameters: {sum(p.numel() for p in learner.parameters()):,}")
        self._register_trainable(self.model_name, learner)
        self.scaler = self.precision.make_grad_scaler()

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
