"""DPT (Xing et al., IEEE TMM 2023): dual-modality prompt tuning, and its ablations VPT and VLP.

DPT learns CoOp text prompts and deep visual prompts together; in the top
blocks (from TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT on) the visual prompts are
class-aware (CAVPT): built per image by cross-attention from the learned text
features of the K classes zero-shot CLIP ranks highest to the incoming image
tokens, each token also trained to predict its own class (auxiliary loss,
weight TRAINER.ALPHA). During the first PRETRAIN.C epochs ("general knowledge
guidance") each modality also learns against the other's frozen zero-shot
features. VLP = DPT without CAVPT; VPT = deep visual prompts classified by
the frozen zero-shot text features.

Config keys keep the reference's names (TRAINER.VPT.N_CTX,
TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT, TRAINER.SELECTED_COVPT.CPN, PRETRAIN.C,
TRAINER.ALPHA, TRAINER.COOP.*, precision in TRAINER.COOP.PREC); the keys the
reference hard-codes live under TRAINER.DPT.
"""
import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from clip.layers import LayerNorm
from dassl.config import ConfigError, register_cfg_extension
from dassl.engine import TRAINER_REGISTRY
from dassl.optim import build_lr_scheduler, build_optimizer

from trainers.common import PromptCLIPTrainer, PromptedCLIP, check_class_token_position, normalize
from trainers.common.feature_server import EVAL_INPUT_BOTH, EVAL_INPUT_IMAGES
from trainers.common.templates import get_template
from trainers.common.visual_prompts import DeepVisualPrompts, vit_block_count
from trainers.coop import add_coop_cfg, build_coop_prompt_learner

ATTENTION_DIM = 32
GUIDANCE_MAIN_WEIGHT = 0.1
IMAGENET_VISUAL_WARMUP_EPOCH = 1


def _add_key(node, key, value, path):
    """Define `path` unless another module already did so with another default (a silent clash)."""
    if key in node and node[key] != value:
        raise ConfigError(f"{path} is already defined with default {node[key]!r}; DPT needs {value!r}")
    node[key] = value


def _add_node(node, key, path):
    if key not in node:
        node[key] = CN()
    elif not isinstance(node[key], CN):
        raise ConfigError(f"{path} is already defined as a value ({node[key]!r}); DPT needs it to be a config node")
    return node[key]


def add_dpt_cfg(cfg):
    """The reference's keys and defaults (spec 1.6); the authors' run values live in the configs."""
    add_coop_cfg(cfg)
    _add_key(_add_node(cfg.TRAINER, "VPT", "TRAINER.VPT"), "N_CTX", 5, "TRAINER.VPT.N_CTX")
    topdown = _add_node(cfg.TRAINER, "TOPDOWN_SECOVPT", "TRAINER.TOPDOWN_SECOVPT")
    _add_key(topdown, "BOTTOMLIMIT", 12, "TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT")
    _add_key(_add_node(cfg.TRAINER, "SELECTED_COVPT", "TRAINER.SELECTED_COVPT"), "CPN", 5, "TRAINER.SELECTED_COVPT.CPN")
    _add_key(_add_node(cfg, "PRETRAIN", "PRETRAIN"), "C", 30, "PRETRAIN.C")
    _add_key(cfg.TRAINER, "ALPHA", 1.0, "TRAINER.ALPHA")
    dpt = _add_node(cfg.TRAINER, "DPT", "TRAINER.DPT")
    _add_key(dpt, "N_KEY_TOKENS", 10, "TRAINER.DPT.N_KEY_TOKENS")
    _add_key(dpt, "TEXT_LR", 0.002, "TRAINER.DPT.TEXT_LR")
    _add_key(dpt, "TEXT_WARMUP_EPOCH", 1, "TRAINER.DPT.TEXT_WARMUP_EPOCH")


register_cfg_extension(add_dpt_cfg)


class ClassAwarePromptGenerator(nn.Module):
    """CAVPT: one generator copy per class-aware block.

    Copy j turns the learned text features of an image's top-K classes into K
    tokens: queries M_j(T[I_b]) attend (one head, W_q/W_k to 32 dims) over the
    detached incoming stream plus E_j key tokens, the raw 768-d tokens serving
    as values; tokens = LN2_j(W_o(A kv) + q), and the auxiliary classifier
    H_j(LN1_j(W_o(A kv))) scores the classes. Parameters are created in the
    reference's order (meta-nets, each copy's W_k, W_q, W_o, LN1s,
    classifiers, LN2s, key tokens), so seeded runs match it.
    """

    def __init__(self, n_copies, text_dim, width, n_classes, n_key_tokens):
        super().__init__()
        if n_copies < 1 or n_key_tokens < 0:
            raise ConfigError(
                f"CAVPT needs at least one block and n_key_tokens >= 0, got {n_copies} blocks and {n_key_tokens} key "
                "tokens; check TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT and TRAINER.DPT.N_KEY_TOKENS"
            )
        copies = range(n_copies)
        self.meta_nets = nn.ModuleList(nn.Linear(text_dim, width) for _ in copies)
        key_projs, query_projs, out_projs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for _ in copies:
            key_projs.append(nn.Linear(width, ATTENTION_DIM, bias=False))
            query_projs.append(nn.Linear(width, ATTENTION_DIM, bias=False))
            out_projs.append(nn.Linear(width, width, bias=False))
        self.key_projs, self.query_projs, self.out_projs = key_projs, query_projs, out_projs
        self.aux_norms = nn.ModuleList(LayerNorm(width) for _ in copies)
        self.classifiers = nn.ModuleList(nn.Linear(width, n_classes, bias=False) for _ in copies)
        self.token_norms = nn.ModuleList(LayerNorm(width) for _ in copies)
        self.key_tokens = nn.ParameterList(nn.Parameter(torch.empty(n_key_tokens, width)) for _ in copies)
        for tokens in self.key_tokens:
            nn.init.normal_(tokens, std=0.02)
        self.class_dependent_keys = tuple(f"classifiers.{j}.weight" for j in copies)

    def __len__(self):
        return len(self.meta_nets)

    def forward(self, copy, stream, class_text, with_aux):
        """stream: B x N x width entering the block; class_text: B x K x text_dim (learned, unnormalised).

        Returns the B x K x width tokens and, with `with_aux`, the B x K x C auxiliary logits.
        """
        queries = self.meta_nets[copy](class_text.type(self.meta_nets[copy].weight.dtype))
        key_tokens = self.key_tokens[copy].to(stream.dtype).expand(stream.shape[0], -1, -1)
        keys_values = torch.cat([stream.detach(), key_tokens], dim=1)
        scores = self.query_projs[copy](queries) @ self.key_projs[copy](keys_values).transpose(1, 2)
        attention = (scores / math.sqrt(ATTENTION_DIM)).softmax(dim=-1)
        attended = self.out_projs[copy](attention @ keys_values)
        tokens = self.token_norms[copy](attended + queries)
        aux = self.classifiers[copy](self.aux_norms[copy](attended)) if with_aux else None
        return tokens, aux


def auxiliary_loss(aux_logits, top_k, labels):
    """Mean CE over the (sample, CAVPT block) pairs whose label is in the sample's top K.

    aux_logits: one B x K x C tensor per block; the row used is the label's
    rank. One mean over all matching pairs (not per block, not divided by
    B); None when no label is in its top K.
    """
    match = top_k == labels.unsqueeze(1)
    if not aux_logits or not bool(match.any()):
        return None
    rows = torch.cat([logits[match] for logits in aux_logits])
    targets = labels.unsqueeze(1).expand_as(top_k)[match].repeat(len(aux_logits))
    return F.cross_entropy(rows.float(), targets)


class VisuallyPromptedCLIP(PromptedCLIP):
    """Frozen CLIP with deep visual prompts and the frozen zero-shot text features T_zs.

    T_zs depends on the class list, so it is a constructor argument kept as a
    non-persistent buffer (rebuilt by the factory for every class set).
    """

    def __init__(self, clip_model, prompt_learner, visual_prompts, zero_shot_text_features, text_plugin=None):
        super().__init__(clip_model, prompt_learner, text_plugin=text_plugin)
        self.visual_prompts = visual_prompts
        self.register_buffer("zero_shot_text_features", zero_shot_text_features, persistent=False)

    def encode_prompted_image(self, image, training, prompt_fn=None):
        """f = rownorm(image feature with deep prompts and `prompt_fn` tokens), plus the plug-in's visual output."""
        visual = self.clip_model.visual
        n_blocks = len(visual.transformer.resblocks)
        deep_prompts = self.visual_prompts.per_block(n_blocks) if self.visual_prompts is not None else None
        request = self.text_plugin.visual_request if self.text_plugin is not None and training else {}
        output = visual.forward_features(image, deep_prompts=deep_prompts, prompt_fn=prompt_fn, **request)
        return normalize(output.pooled), (output if request else None)


class VPTCLIP(VisuallyPromptedCLIP):
    """VPT: deep visual prompts, classified by the frozen zero-shot text features."""

    def __init__(self, clip_model, visual_prompts, zero_shot_text_features):
        super().__init__(clip_model, None, visual_prompts, zero_shot_text_features)

    def forward(self, image, labels=None):
        image_features, _ = self.encode_prompted_image(image.type(self.dtype), training=False)
        logits = self.logits(image_features, self.zero_shot_text_features)
        return (logits, {}) if labels is not None else logits


class DualPromptCLIP(VisuallyPromptedCLIP):
    """VLP (no `class_aware`) and DPT: CoOp text prompts plus deep visual prompts, optionally CAVPT.

    `guidance_active` (set by the trainer per epoch) adds the general-knowledge
    guidance terms CE(s f0 T_n^T) and CE(s f T_zs^T); the trainer weighs the
    main CE by 0.1 meanwhile.
    """

    def __init__(
        self, clip_model, prompt_learner, visual_prompts, zero_shot_text_features,
        class_aware=None, cpn=0, aux_weight=0.0, text_plugin=None,
    ):
        super().__init__(clip_model, prompt_learner, visual_prompts, zero_shot_text_features, text_plugin)
        self.class_aware = class_aware
        self.top_k = min(cpn, prompt_learner.n_cls)
        self.aux_weight = aux_weight
        if class_aware is not None:
            if self.top_k < 1:
                raise ConfigError(f"CAVPT needs TRAINER.SELECTED_COVPT.CPN >= 1, got {cpn}")
            self.first_class_aware_block = len(clip_model.visual.transformer.resblocks) - len(class_aware)
        self.guidance_active = False
        self._fixed_text = None

    def zero_shot_image_features(self, image, frozen_features=None):
        """f0 = rownorm(unprompted frozen image feature).

        The one place the frozen image pass happens, so a frozen image-feature
        cache (keyed by image and test transform) can serve it at evaluation
        (`frozen_features`).
        """
        with torch.no_grad():
            return self.frozen_image_features(image, frozen_features)

    @property
    def eval_image_input(self):
        """DPT's top-K pass is the frozen tower (servable from the feature cache); VLP has none at evaluation."""
        return EVAL_INPUT_BOTH if self.class_aware is not None else EVAL_INPUT_IMAGES

    def _encode_class_text(self):
        learner = self.prompt_learner
        text = self.encode_prompts(learner(), learner.eot_indices)
        return text, normalize(text)

    def class_text_features(self):
        """(T, T_n): learned text features of every class, unnormalised and normalised."""
        if self._fixed_text is None:
            return self._encode_class_text()
        device = self.prompt_learner.ctx.device
        if device not in self._fixed_text:
            self._fixed_text[device] = self._encode_class_text()
        return self._fixed_text[device]

    @contextlib.contextmanager
    def text_features_fixed(self):
        """Inside, T and T_n are encoded once (per device) and reused: an evaluation, where they do not depend on the image."""
        self._fixed_text = {}
        try:
            yield
        finally:
            self._fixed_text = None

    def top_k_classes(self, zero_shot_image):
        """I_b: the K classes zero-shot CLIP ranks highest for each image, in rank order."""
        return self.logits(zero_shot_image, self.zero_shot_text_features).topk(self.top_k, dim=-1).indices

    def class_aware_prompt_fn(self, class_text, aux_logits):
        """The forward_features callback: CAVPT tokens in the top blocks, collecting aux logits when a list is given."""

        def prompt_fn(block_index, stream):
            copy = block_index - self.first_class_aware_block
            if copy < 0:
                return None
            tokens, aux = self.class_aware(copy, stream, class_text, with_aux=aux_logits is not None)
            if aux is not None:
                aux_logits.append(aux)
            return tokens

        return prompt_fn

    def forward(self, image, labels=None, frozen_features=None):
        training = labels is not None
        image = image.type(self.dtype)
        guidance = training and self.guidance_active
        needs_zero_shot_image = self.class_aware is not None or guidance
        zero_shot_image = self.zero_shot_image_features(image, frozen_features) if needs_zero_shot_image else None
        text, text_normalized = self.class_text_features()
        aux_logits = [] if training else None
        prompt_fn, top_k = None, None
        if self.class_aware is not None:
            top_k = self.top_k_classes(zero_shot_image)
            prompt_fn = self.class_aware_prompt_fn(text[top_k], aux_logits)
        image_features, visual_output = self.encode_prompted_image(image, training, prompt_fn)
        refined, plugin_terms = self.refine_text_features(text_normalized, image_features, visual_output, labels)
        logits = self.logits(image_features, refined)
        if not training:
            return logits
        loss_terms = dict(plugin_terms)
        if guidance:
            image_guided = self.logits(zero_shot_image, text_normalized)
            text_guided = self.logits(image_features, self.zero_shot_text_features)
            loss_terms["guidance_image"] = F.cross_entropy(image_guided.float(), labels)
            loss_terms["guidance_text"] = F.cross_entropy(text_guided.float(), labels)
        aux = auxiliary_loss(aux_logits, top_k, labels) if self.class_aware is not None else None
        if aux is not None:
            loss_terms["aux"] = self.aux_weight * aux
        return logits, loss_terms


class VisualPromptTrainer(PromptCLIPTrainer):
    """What VPT, VLP and DPT share: TRAINER.VPT checks, deep prompts, T_zs built for every class set."""

    cfg_node = "COOP"

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        if cfg.TRAINER.VPT.N_CTX < 1:
            raise ConfigError(f"TRAINER.VPT.N_CTX must be at least 1, got {cfg.TRAINER.VPT.N_CTX}")

    def build_visual_prompts(self, cfg, clip_model, n_blocks):
        width = clip_model.visual.conv1.out_channels
        return DeepVisualPrompts(n_blocks, cfg.TRAINER.VPT.N_CTX, width, clip_model.dtype)

    def zero_shot_text_features(self, cfg, clip_model, classnames):
        """T_zs: frozen features of the dataset's CoOp template, on the run's device."""
        template = get_template(cfg.DATASET.NAME, kind="coop")
        print(f"{type(self).__name__} zero-shot text features: {template!r}")
        return self.frozen_class_features(clip_model, template, classnames)


@TRAINER_REGISTRY.register()
class VPT(VisualPromptTrainer):
    """Deep visual prompts in every block; one optimizer with cfg.OPTIM."""

    model_name = "visual_prompts"
    accepts_text_plugin = False  # it classifies with the frozen zero-shot text features: nothing to refine

    def build_custom_clip(self, cfg, classnames, clip_model):
        n_blocks = vit_block_count(clip_model, "VPT")
        prompts = self.build_visual_prompts(cfg, clip_model, n_blocks)
        return VPTCLIP(clip_model, prompts, self.zero_shot_text_features(cfg, clip_model, classnames))

    def trainable_modules(self, model):
        return {self.model_name: model.visual_prompts}


@TRAINER_REGISTRY.register()
class VLP(VisualPromptTrainer):
    """CoOp text prompts + deep visual prompts in every block, with the guidance phase.

    Optimizers: the visual parts use cfg.OPTIM (warm-up 1 epoch on ImageNet,
    as the reference); the text context and any text plug-in use
    TRAINER.DPT.TEXT_LR and TEXT_WARMUP_EPOCH.
    """

    visual_part_names = ("visual_prompts",)

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_class_token_position(cfg.TRAINER.COOP.CLASS_TOKEN_POSITION, "TRAINER.COOP.CLASS_TOKEN_POSITION")
        if cfg.OPTIM.MAX_ITER > 0:
            raise ConfigError(
                f"{type(self).__name__}'s guidance phase (PRETRAIN.C) and schedules count epochs; "
                f"set OPTIM.MAX_ITER 0 and use OPTIM.MAX_EPOCH (got MAX_ITER {cfg.OPTIM.MAX_ITER})"
            )

    def visual_prompt_blocks(self, cfg, n_blocks):
        return n_blocks

    def build_class_aware(self, cfg, classnames, clip_model, n_blocks):
        return None

    def build_custom_clip(self, cfg, classnames, clip_model):
        n_blocks = vit_block_count(clip_model, type(self).__name__)
        learner = build_coop_prompt_learner(cfg, classnames, clip_model)
        visual_prompts = self.build_visual_prompts(cfg, clip_model, self.visual_prompt_blocks(cfg, n_blocks))
        class_aware = self.build_class_aware(cfg, classnames, clip_model, n_blocks)
        plugin = self.build_text_plugin(cfg, clip_model)
        return DualPromptCLIP(
            clip_model,
            learner,
            visual_prompts,
            self.zero_shot_text_features(cfg, clip_model, classnames),
            class_aware,
            cpn=cfg.TRAINER.SELECTED_COVPT.CPN,
            aux_weight=float(cfg.TRAINER.ALPHA),
            text_plugin=plugin,
        )

    def trainable_modules(self, model):
        return {"prompt_learner": model.prompt_learner, "visual_prompts": model.visual_prompts}

    def optim_cfg_for(self, name):
        """cfg.OPTIM for the visual parts (1 warm-up epoch on ImageNet); TEXT_LR / TEXT_WARMUP_EPOCH for text."""
        optim_cfg = self.cfg.OPTIM.clone()
        optim_cfg.defrost()
        if name in self.visual_part_names:
            if self.cfg.DATASET.NAME == "ImageNet":
                optim_cfg.WARMUP_EPOCH = IMAGENET_VISUAL_WARMUP_EPOCH
        else:
            optim_cfg.LR = self.cfg.TRAINER.DPT.TEXT_LR
            optim_cfg.WARMUP_EPOCH = self.cfg.TRAINER.DPT.TEXT_WARMUP_EPOCH
        optim_cfg.freeze()
        return optim_cfg

    def build_optimizer_and_scheduler(self, name, module):
        optim_cfg = self.optim_cfg_for(name)
        optimizer = build_optimizer(module, optim_cfg)
        return optimizer, build_lr_scheduler(optimizer, optim_cfg)

    def before_epoch(self):
        super().before_epoch()
        self.custom_clip.guidance_active = self.epoch < self.cfg.PRETRAIN.C

    def compute_loss(self, logits, labels, loss_terms):
        if not self.custom_clip.guidance_active:
            return super().compute_loss(logits, labels, loss_terms)
        return guided_loss(logits, labels, loss_terms)

    def test(self, split=None):
        with self.custom_clip.text_features_fixed():
            return super().test(split)


def guided_loss(logits, labels, loss_terms):
    """Guidance phase: 0.1 CE(l_main) plus the model's terms (guidance CEs, aux, plug-in)."""
    loss = GUIDANCE_MAIN_WEIGHT * F.cross_entropy(logits.float(), labels)
    for term in loss_terms.values():
        loss = loss + term.float().mean()
    return loss


@TRAINER_REGISTRY.register()
class DPT(VLP):
    """VLP plus CAVPT in blocks BOTTOMLIMIT..L (deep prompts stay in blocks 1..BOTTOMLIMIT-1).

    Three optimizers: text context (TEXT_LR), visual prompts and CAVPT (cfg.OPTIM).
    """

    visual_part_names = ("visual_prompts", "class_aware_prompts")

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        if cfg.TRAINER.SELECTED_COVPT.CPN < 1:
            raise ConfigError(f"TRAINER.SELECTED_COVPT.CPN must be at least 1, got {cfg.TRAINER.SELECTED_COVPT.CPN}")

    def visual_prompt_blocks(self, cfg, n_blocks):
        bottom = cfg.TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT
        if not 1 <= bottom <= n_blocks:
            raise ConfigError(
                f"TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT must be between 1 and {n_blocks} (the image tower's blocks), "
                f"got {bottom}"
            )
        return bottom - 1

    def build_class_aware(self, cfg, classnames, clip_model, n_blocks):
        generator = ClassAwarePromptGenerator(
            n_copies=n_blocks - self.visual_prompt_blocks(cfg, n_blocks),
            text_dim=clip_model.text_projection.shape[1],
            width=clip_model.visual.conv1.out_channels,
            n_classes=len(classnames),
            n_key_tokens=cfg.TRAINER.DPT.N_KEY_TOKENS,
        )
        return generator.to(clip_model.dtype)

    def trainable_modules(self, model):
        return {**super().trainable_modules(model), "class_aware_prompts": model.class_aware}
