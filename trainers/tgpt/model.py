"""TGP-T's model (Tan et al., AAAI 2024): image-conditioned, text-supervised prompts with a zero-shot-initialised head.

Two query sets pass through one "Bonder" block each (self-attention, then
cross-attention to the frozen image tokens), giving per image one category
and one content prompt in token-embedding space. The text encoder sees those
two sequences per image, so its cost does not grow with the number of
classes. The prompts are supervised as tokens through CLIP's tied vocabulary
(towards "a photo of a {class}." and towards a description of the image), and
a linear head over rownorm([image feature; text feature]) classifies.
"""
import json
import math
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

import clip
from clip.layers import attention_heads
from dassl.config import ConfigError
from dassl.engine.distributed import share_of_global_count
from dassl.utils.errors import CheckpointMismatchError

from trainers.common import PromptedCLIP, normalize
from trainers.common.prompt_learner import context_from_words
from trainers.common.templates import IMAGENET_FAMILY

LOGIT_SCALE = math.exp(4.60517)
MINED_TEMPLATES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mined_templates.json")
GENERIC_TEMPLATES = (
    "a photo of a {}.",
    "a good photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
)
SOS_ID, PERIOD_ID, EOT_ID = clip.tokenize(".")[0, :3].tolist()


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
        """Smoothed CE of the prompts read through the tied vocabulary; id 0 positions are ignored.

        The mean runs over the positions not ignored of the global batch (under torchrun too).
        """
        vocabulary_logits = prompts @ self.clip_model.token_embedding.weight.t().type(prompts.dtype)
        targets = targets.flatten().to(prompts.device)
        loss = F.cross_entropy(
            vocabulary_logits.flatten(0, 1).float(),
            targets,
            ignore_index=0,
            label_smoothing=self.label_smoothing,
        )
        return loss * share_of_global_count((targets != 0).sum())

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
