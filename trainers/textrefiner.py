"""TextRefiner (Xie et al., AAAI 2025): refine a host's class text features with
a small cache of local visual concepts written from the image tower's final tokens.

It is one text-feature plug-in (trainers.common.text_plugins) that any host
producing class text features turns on with TRAINER.TEXTREFINER.ENABLED
(CoOp, KgCoOp, CoCoOp with per-image rows, DPT/VLP); the registered trainer
`TextRefiner` is CoOp with it forced on. Training: T' = T + ALPHA * [T; R] W_agg^T
with R the cache read, plus L_sem / BALANCE (aligned local tokens classified by
the unrefined T) and DISTILL * L_reg (L1 between rownorm(T') and T); the cache
is written after the read. Test: only the read and W_agg, once per class set.

Config node TRAINER.TEXTREFINER (reference defaults):
  ENABLED False, MEMORY_SIZE 25, ALPHA 0.2, MOMENTUM 0.8, TOPK 5,
  BALANCE 50 (L_sem divisor), DISTILL 20 (L_reg weight; 0 switches L_reg off),
  SEM_LOSS True (False switches L_sem off: BALANCE, a divisor, cannot express a zero weight),
  CACHE_UPDATE "reference" (the paper code's unnormalised write) or "ema".
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from clip.vision_transformer import VisionTransformer
from dassl.config import ConfigError, register_cfg_extension
from dassl.engine import TRAINER_REGISTRY
from dassl.engine.distributed import BatchNormOverRanks, all_gather_rows

from trainers.common import TextFeaturePlugin, normalize, register_text_plugin
from trainers.coop import CoOp

CACHE_UPDATES = ("reference", "ema")


def add_textrefiner_cfg(cfg):
    cfg.TRAINER.TEXTREFINER = CN()
    cfg.TRAINER.TEXTREFINER.ENABLED = False
    cfg.TRAINER.TEXTREFINER.MEMORY_SIZE = 25
    cfg.TRAINER.TEXTREFINER.ALPHA = 0.2
    cfg.TRAINER.TEXTREFINER.MOMENTUM = 0.8
    cfg.TRAINER.TEXTREFINER.TOPK = 5
    cfg.TRAINER.TEXTREFINER.BALANCE = 50.0
    cfg.TRAINER.TEXTREFINER.DISTILL = 20.0
    cfg.TRAINER.TEXTREFINER.SEM_LOSS = True
    cfg.TRAINER.TEXTREFINER.CACHE_UPDATE = "reference"


register_cfg_extension(add_textrefiner_cfg)


def check_textrefiner_cfg(node):
    """Refuse values the module cannot run with, naming the key and the fix."""
    key = "TRAINER.TEXTREFINER"
    if node.CACHE_UPDATE not in CACHE_UPDATES:
        raise ConfigError(f"{key}.CACHE_UPDATE must be one of {', '.join(CACHE_UPDATES)}, got {node.CACHE_UPDATE!r}")
    if node.MEMORY_SIZE < 1:
        raise ConfigError(f"{key}.MEMORY_SIZE must be at least 1 cache entry, got {node.MEMORY_SIZE}")
    if not 0.0 <= node.MOMENTUM <= 1.0:
        raise ConfigError(f"{key}.MOMENTUM must lie in [0, 1], got {node.MOMENTUM}")
    if node.TOPK < 0:
        raise ConfigError(f"{key}.TOPK must be >= 0 patch tokens, got {node.TOPK}")
    if node.DISTILL < 0:
        raise ConfigError(f"{key}.DISTILL must be >= 0 (0 switches L_reg off), got {node.DISTILL}")
    if node.SEM_LOSS and node.BALANCE <= 0:
        raise ConfigError(
            f"{key}.BALANCE divides L_sem and must be > 0, got {node.BALANCE}; "
            f"to switch L_sem off set {key}.SEM_LOSS False"
        )


class AlignmentMLP(nn.Module):
    """Per-token Linear -> BatchNorm -> ReLU -> Linear (the reference's 1x1 convs).

    BatchNorm pools its statistics over every token of the batch (of every
    process under torchrun) and always computes in fp32 (its parameters stay
    fp32 when the rest is fp16).
    """

    def __init__(self, width):
        super().__init__()
        self.layers = nn.Sequential(
            OrderedDict(
                [
                    ("fc1", nn.Linear(width, width)),
                    ("norm", BatchNormOverRanks(width)),
                    ("relu", nn.ReLU()),
                    ("fc2", nn.Linear(width, width)),
                ]
            )
        )

    def forward(self, tokens):
        hidden = self.layers.fc1(tokens.type(self.layers.fc1.weight.dtype))
        flat = hidden.reshape(-1, hidden.shape[-1])
        normed = self.layers.norm(flat.float()).to(hidden.dtype).reshape(hidden.shape)
        return self.layers.fc2(self.layers.relu(normed))


def semantic_tokens(aligned, attention, topk):
    """[CLS; the top-k patches by CLS attention; mean of all tokens] -> (B, topk + 2, D)."""
    if topk > attention.shape[1]:
        raise ConfigError(
            f"TRAINER.TEXTREFINER.TOPK is {topk} but the image has only {attention.shape[1]} patch tokens; lower TOPK"
        )
    patches = attention.topk(topk, dim=1).indices + 1
    picked = aligned.gather(1, patches.unsqueeze(-1).expand(-1, -1, aligned.shape[-1]))
    return torch.cat([aligned[:, :1], picked, aligned.mean(dim=1, keepdim=True)], dim=1)


def write_cache(cache, tokens, momentum, rule="reference"):
    """The cache after one write of `tokens` (N x D), vectorised; returns a new tensor.

    Each token goes to its most similar entry with weight P[j, a(j)] / max_k P[k, a(j)],
    P being the softmax of the similarities over all tokens. "reference" adds the
    weighted sum of the unit tokens (the paper code's rule); "ema" their weighted
    mean. Entries no token chose stay as they are; every row is renormalised.
    """
    if rule not in CACHE_UPDATES:
        raise ConfigError(f"cache update rule must be one of {', '.join(CACHE_UPDATES)}, got {rule!r}")
    units = normalize(tokens.reshape(-1, tokens.shape[-1]).to(cache.dtype))
    similarity = units @ cache.t()
    assignment = similarity.argmax(dim=1)
    probabilities = similarity.softmax(dim=0)
    weights = probabilities.gather(1, assignment.unsqueeze(1)).squeeze(1) / probabilities.max(dim=0).values[assignment]
    sums = torch.zeros(cache.shape, dtype=torch.float32, device=cache.device)
    sums.index_add_(0, assignment, weights.float().unsqueeze(1) * units.float())
    if rule == "ema":
        totals = torch.zeros(cache.shape[0], dtype=torch.float32, device=cache.device)
        totals.index_add_(0, assignment, weights.float())
        sums = sums / totals.clamp_min(torch.finfo(torch.float32).tiny).unsqueeze(1)
    assigned = torch.bincount(assignment, minlength=cache.shape[0]).unsqueeze(1) > 0
    updated = momentum * cache + (1 - momentum) * sums.to(cache.dtype)
    return normalize(torch.where(assigned, updated, cache))


class TextRefinerPlugin(TextFeaturePlugin):
    """Alignment MLP, aggregation W_agg and the local cache (a persistent buffer).

    Text features are (C, D) or, for per-image hosts like CoCoOp, (B, C, D).
    Outside training the refined matrix is kept while its input, dtype and
    autocast state stay the same (once per class set); train(), eval() and
    load_state_dict() drop it.
    """

    model_name = "text_refiner"
    visual_request = {"tokens": "ln_post_proj", "cls_attention": True}

    def __init__(
        self,
        width,
        logit_scale,
        memory_size=25,
        alpha=0.2,
        momentum=0.8,
        topk=5,
        semantic_weight=1 / 50,
        regularisation_weight=20.0,
        cache_update="reference",
        dtype=torch.float32,
    ):
        super().__init__()
        self.logit_scale = float(logit_scale)
        self.alpha = alpha
        self.momentum = momentum
        self.topk = topk
        self.semantic_weight = semantic_weight
        self.regularisation_weight = regularisation_weight
        self.cache_update = cache_update
        self.align = AlignmentMLP(width)
        self.register_buffer("local_cache", normalize(torch.rand(memory_size, width)))
        self.aggregate = nn.Linear(2 * width, width, bias=False)
        self.to(dtype)
        self.align.layers.norm.float()
        self._test_refined = None
        self.register_load_state_dict_post_hook(lambda module, _: module.forget_test_features())

    def forget_test_features(self):
        """Drop the kept test-time matrix (its weights or cache may be about to change)."""
        self._test_refined = None

    def train(self, mode=True):
        self.forget_test_features()
        return super().train(mode)

    def read_cache(self, text_features):
        """Softmax(rownorm(T) A^T) A, no temperature."""
        cache = self.local_cache.to(text_features.dtype)
        return (normalize(text_features) @ cache.t()).softmax(dim=-1) @ cache

    def refine(self, text_features):
        """T' = T + alpha * [T; R] W_agg^T (not renormalised)."""
        combined = torch.cat([text_features, self.read_cache(text_features)], dim=-1)
        return text_features + self.alpha * self.aggregate(combined).to(text_features.dtype)

    def refine_for_test(self, text_features):
        """T' outside training, reused while the class text features stay the same (not per-image rows)."""
        if self.training or torch.is_grad_enabled() or text_features.dim() != 2:
            return self.refine(text_features)
        key = (text_features.dtype, text_features.device, torch.is_autocast_enabled(text_features.device.type))
        cached = self._test_refined
        if cached is None or cached[0] != key or not torch.equal(cached[1], text_features):
            self._test_refined = (key, text_features, self.refine(text_features))
        return self._test_refined[2]

    def forward(self, text_features, image_features, visual_output, labels):
        if labels is None:
            return self.refine_for_test(text_features), {}
        if visual_output is None or visual_output.tokens is None or visual_output.attention is None:
            raise ValueError(
                "TextRefiner needs the final image tokens and CLS attention of the training image pass; "
                "the host must call clip_model.visual.forward_features(images, **plugin.visual_request)"
            )
        refined = self.refine(text_features)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.semantic_weight > 0):
            aligned = self.align(visual_output.tokens)
        terms = {}
        if self.semantic_weight > 0:
            terms["textrefiner_sem"] = self.semantic_weight * self.semantic_loss(
                aligned, visual_output.attention, text_features, labels
            )
        if self.regularisation_weight > 0:
            terms["textrefiner_reg"] = self.regularisation_weight * self.regularisation_loss(refined, text_features)
        self.write(aligned.detach())
        return refined, terms

    def semantic_loss(self, aligned, attention, text_features, labels):
        """CE of scale * Qsem T^T against each token's image label; per-image T for (B, C, D)."""
        queries = semantic_tokens(aligned, attention, self.topk).to(text_features.dtype)
        if text_features.dim() == 2:
            logits = queries @ text_features.t()
        else:
            logits = torch.einsum("bkd,bcd->bkc", queries, text_features)
        targets = labels.unsqueeze(1).expand(-1, queries.shape[1]).reshape(-1)
        return F.cross_entropy(self.logit_scale * logits.reshape(-1, logits.shape[-1]).float(), targets)

    @staticmethod
    def regularisation_loss(refined, text_features):
        """Mean over every element of |rownorm(T') - T|."""
        return (normalize(refined.float()) - text_features.float()).abs().mean()

    @torch.no_grad()
    def write(self, aligned):
        """Replace (not modify) the cache, so the autograd graph of this step's read stays valid.

        Under torchrun every process writes the tokens of the whole global batch.
        """
        with torch.autocast(aligned.device.type, enabled=False):
            self.local_cache = write_cache(self.local_cache, all_gather_rows(aligned), self.momentum, self.cache_update)


@register_text_plugin
def build_text_refiner(cfg, clip_model, precision):
    """TextRefiner in CLIP's working dtype (fp16 for PREC fp16) when TRAINER.TEXTREFINER.ENABLED."""
    node = cfg.TRAINER.get("TEXTREFINER")
    if node is None or not node.ENABLED:
        return None
    check_textrefiner_cfg(node)
    if not isinstance(clip_model.visual, VisionTransformer):
        raise ConfigError(
            f"TextRefiner needs a ViT image tower (final tokens and CLS attention); "
            f"{cfg.MODEL.BACKBONE.NAME} is a ResNet: use ViT-B/16 or ViT-B/32"
        )
    print(f"TextRefiner on (PREC={precision.mode}): {dict(node)}")
    return TextRefinerPlugin(
        clip_model.visual.output_dim,
        clip_model.logit_scale.exp().item(),
        memory_size=node.MEMORY_SIZE,
        alpha=node.ALPHA,
        momentum=node.MOMENTUM,
        topk=node.TOPK,
        semantic_weight=1.0 / node.BALANCE if node.SEM_LOSS else 0.0,
        regularisation_weight=float(node.DISTILL),
        cache_update=node.CACHE_UPDATE,
        dtype=clip_model.dtype,
    )


def with_textrefiner_enabled(cfg):
    """A frozen copy of `cfg` with TRAINER.TEXTREFINER.ENABLED True."""
    if cfg.TRAINER.TEXTREFINER.ENABLED:
        return cfg
    print("TextRefiner trainer: TRAINER.TEXTREFINER.ENABLED forced to True")
    enabled = cfg.clone()
    enabled.defrost()
    enabled.TRAINER.TEXTREFINER.ENABLED = True
    enabled.freeze()
    return enabled


@TRAINER_REGISTRY.register()
class TextRefiner(CoOp):
    """CoOp + TextRefiner, the reference's trainer (TRAINER.TEXTREFINER.ENABLED is forced on)."""

    def __init__(self, cfg):
        super().__init__(with_textrefiner_enabled(cfg))
