"""CoOp's prompt learner: learnable context vectors around frozen class-name tokens.

Shared by CoOp, KgCoOp, CoCoOp (which adds its meta-net on top) and DPT.
A prompt is [SOS][ctx_1..ctx_M][class tokens][.][EOT] in the `end` layout;
`middle` and `front` move the class tokens, keeping the total length, so the
EOT index (argmax of the token ids) stays valid in every layout.
"""
import torch
from torch import nn

import clip
from dassl.config import ConfigError
from dassl.config.checks import invalid_value, is_int

from .class_names import token_count, tokenize_class_prompts

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def readable_classnames(classnames):
    """Upstream replaces `_` by a space before tokenizing class names."""
    return [name.replace("_", " ") for name in classnames]


def check_class_token_position(position, cfg_key="CLASS_TOKEN_POSITION"):
    if position not in CLASS_TOKEN_POSITIONS:
        raise ConfigError(
            f"{cfg_key} must be one of {', '.join(CLASS_TOKEN_POSITIONS)}, got {position!r}"
        )


def embed_tokens(clip_model, token_ids):
    """Frozen token embeddings in CLIP's working dtype."""
    with torch.no_grad():
        return clip_model.token_embedding(token_ids).type(clip_model.dtype)


def ctx_init_words(ctx_init, key="CTX_INIT"):
    """The words of a context init; each must be one BPE token.

    Upstream sets n_ctx to the number of words and takes that many token
    embeddings; that is only right when every word is one BPE token, so any
    other init string is refused instead of silently shifting the layout.
    """
    words = ctx_init.replace("_", " ").split()
    if not words:
        raise ConfigError(f"{key} {ctx_init!r} holds no words; leave it empty ('') for a random init")
    n_tokens = token_count(" ".join(words))
    if n_tokens != len(words):
        raise ConfigError(
            f"{key} {ctx_init!r} has {len(words)} words but {n_tokens} BPE tokens; "
            f"use words that are single CLIP tokens (e.g. 'a photo of a') or a random init ({key} '')"
        )
    return words


def check_random_context_length(n_ctx, key="N_CTX"):
    if not is_int(n_ctx) or n_ctx < 1:
        raise invalid_value(key, n_ctx, "an integer >= 1 for a random context (CTX_INIT '')")


def check_context_cfg(node, node_key):
    """CTX_INIT (or N_CTX for a random init) of `node`, checked with the config, before the dataset loads."""
    if node.CTX_INIT:
        ctx_init_words(node.CTX_INIT, f"{node_key}.CTX_INIT")
    else:
        check_random_context_length(node.N_CTX, f"{node_key}.N_CTX")


def context_from_words(clip_model, ctx_init):
    """Context vectors initialised from the embeddings of the given (single-token) words."""
    words = ctx_init_words(ctx_init)
    text = " ".join(words)
    embedding = embed_tokens(clip_model, clip.tokenize([text]))
    return embedding[0, 1 : 1 + len(words)].clone(), text


def random_context(clip_model, n_ctx, n_cls, class_specific):
    """N(0, 0.02) context: one shared (n_ctx, D) or one per class (n_cls, n_ctx, D)."""
    check_random_context_length(n_ctx)
    width = clip_model.token_embedding.embedding_dim
    shape = (n_cls, n_ctx, width) if class_specific else (n_ctx, width)
    ctx = torch.empty(shape, dtype=clip_model.dtype)
    nn.init.normal_(ctx, std=0.02)
    return ctx, " ".join(["X"] * n_ctx)


def class_token_layout(position, n_ctx, name_lens, seq_len):
    """Per-class permutation of the `end` layout that yields `position` (None for `end`).

    Row i lists, for each output slot, which slot of the end-layout prompt
    [SOS][ctx][class . EOT pad] it takes, reproducing upstream's per-class
    concatenation with a single gather.
    """
    if position == "end":
        return None
    half = n_ctx // 2
    rows = []
    for name_len in name_lens:
        sos = [0]
        ctx = list(range(1, 1 + n_ctx))
        name = list(range(1 + n_ctx, 1 + n_ctx + name_len))
        rest = list(range(1 + n_ctx + name_len, seq_len))
        if position == "middle":
            rows.append(sos + ctx[:half] + name + ctx[half:] + rest)
        else:
            rows.append(sos + name + ctx + rest)
    return torch.tensor(rows, dtype=torch.long)


class PromptLearner(nn.Module):
    """Learnable context (generic or class-specific) plus frozen class tokens.

    forward() returns the prompt embeddings (n_cls, seq_len, D), cut after the
    longest EOT (exact under the causal mask, and cheaper); `eot_indices`
    gives each row's EOT position. `token_prefix`/`token_suffix` depend on the
    class list: they are saved (as upstream) but never loaded on other classes.
    """

    class_dependent_keys = ("token_prefix", "token_suffix", "token_midfix")

    def __init__(self, classnames, clip_model, n_ctx=16, ctx_init="", csc=False, class_token_position="end"):
        super().__init__()
        check_class_token_position(class_token_position)
        classnames = readable_classnames(classnames)
        if not classnames:
            raise ConfigError(
                "PromptLearner needs at least one class name: the dataset (after DATASET.SUBSAMPLE_CLASSES) has none"
            )
        if ctx_init:
            ctx, prompt_prefix = context_from_words(clip_model, ctx_init)
        else:
            ctx, prompt_prefix = random_context(clip_model, n_ctx, len(classnames), csc)
        self.ctx = nn.Parameter(ctx)
        self.n_cls = len(classnames)
        self.n_ctx = ctx.shape[-2]
        self.ctx_dim = ctx.shape[-1]
        self.classnames = classnames
        self.prompt_prefix = prompt_prefix
        self.class_token_position = class_token_position
        self.name_lens = [token_count(name) for name in classnames]

        tokenized = tokenize_class_prompts([f"{prompt_prefix} {name}." for name in classnames], classnames)
        embedding = embed_tokens(clip_model, tokenized)
        eot_indices = tokenized.argmax(dim=-1)
        self.seq_len = int(eot_indices.max()) + 1
        self.register_buffer("token_prefix", embedding[:, :1].clone())
        self.register_buffer("token_suffix", embedding[:, 1 + self.n_ctx :].clone())
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)
        self.register_buffer("eot_indices", eot_indices, persistent=False)
        layout = class_token_layout(class_token_position, self.n_ctx, self.name_lens, self.seq_len)
        self.register_buffer("layout_index", layout, persistent=False)

    def expanded_context(self):
        """The context as (n_cls, n_ctx, D), broadcasting a generic context to all classes."""
        if self.ctx.dim() == 2:
            return self.ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        return self.ctx

    def assemble(self, ctx):
        """Prompts from a context of shape (..., n_cls, n_ctx, D) -> (..., n_cls, seq_len, D)."""
        lead = ctx.shape[:-3]
        prefix = self.token_prefix.expand(*lead, -1, -1, -1)
        suffix = self.token_suffix[:, : self.seq_len - 1 - self.n_ctx].expand(*lead, -1, -1, -1)
        prompts = torch.cat([prefix, ctx.type(prefix.dtype), suffix], dim=-2)
        if self.layout_index is None:
            return prompts
        return prompts.gather(-2, self.layout_index.unsqueeze(-1).expand_as(prompts))

    def forward(self):
        return self.assemble(self.expanded_context())
