"""Transformer building blocks shared by CLIP's text tower and its ViT image tower.

Parameter names follow OpenAI's checkpoints (``attn.in_proj_weight``,
``mlp.c_fc``, ``ln_1`` ...) so real weights load without key mapping, while the
attention itself runs through PyTorch's fused ``scaled_dot_product_attention``.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

HEAD_WIDTH = 64
TINY_HEAD_WIDTH = 16
TINY_WIDTH_LIMIT = 256


def openai_heads(width):
    """Heads OpenAI's ``build_model`` (and open_clip's default) gives a tower of this width.

    The rule is ``width // 64`` for both towers (for ModifiedResNet, ``width`` is
    the attention pool's width). An OpenAI-format checkpoint must build exactly
    OpenAI's network, so ``build_model`` uses this rule unless the checkpoint
    records another head width (see ``clip.model.HEAD_WIDTH_KEY``).
    """
    if width < HEAD_WIDTH:
        raise ValueError(
            f"a tower of width {width} has no {HEAD_WIDTH}-channel attention head (OpenAI's rule width // "
            f"{HEAD_WIDTH}); a model this small must record its head width (CLIP(..., head_width=...))"
        )
    return width // HEAD_WIDTH


def heads_of_width(width, head_width):
    """Number of ``head_width``-channel heads in a tower of ``width`` channels."""
    if head_width <= 0 or width % head_width:
        raise ValueError(f"attention width {width} is not a multiple of the head width {head_width}")
    return width // head_width


def attention_heads(width):
    """Heads for the toolkit's own small attention modules (not for loading checkpoints).

    64-channel heads from width 256 up; below that 16-channel heads (at least
    one) so that tiny modules still exercise multi-head attention. CLIP
    checkpoints follow ``openai_heads`` or their recorded head width instead.
    """
    if width <= 0:
        raise ValueError(f"attention width must be positive, got {width}")
    head_width = HEAD_WIDTH if width >= TINY_WIDTH_LIMIT else TINY_HEAD_WIDTH
    return max(1, width // head_width)


class LayerNorm(nn.LayerNorm):
    """LayerNorm that always computes in fp32 and casts back (fp16 CLIP stays stable)."""

    def forward(self, x):
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)
        return out.to(x.dtype)


class QuickGELU(nn.Module):
    """The sigmoid approximation of GELU that CLIP was trained with."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class MultiheadSelfAttention(nn.Module):
    """Self-attention with nn.MultiheadAttention's parameter names, computed by fused SDPA."""

    def __init__(self, width, heads):
        super().__init__()
        if width % heads:
            raise ValueError(f"attention width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _project(self, x):
        """Batch-first ``B x N x width`` -> query, key, value as ``B x heads x N x head_width``."""
        batch, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(batch, length, 3, self.heads, width // self.heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def _merge(self, out):
        batch, heads, length, head_width = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, heads * head_width))

    def forward(self, x, causal=False):
        q, k, v = self._project(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=causal))

    def forward_with_first_query_weights(self, x):
        """Attention output plus the first query's post-softmax weights over all keys,
        averaged over heads (``B x N``). The output is the fused path's, unchanged."""
        q, k, v = self._project(x)
        out = self._merge(F.scaled_dot_product_attention(q, k, v))
        scores = q[:, :, :1].float() @ k.float().transpose(-2, -1) * q.shape[-1] ** -0.5
        weights = scores.softmax(dim=-1).mean(dim=1)[:, 0]
        return out, weights.to(x.dtype)


class MLP(nn.Module):
    """CLIP's position-wise feed-forward: c_fc -> activation -> c_proj.

    ``act_layer``: QuickGELU for OpenAI's models, ``nn.GELU`` (exact) for most open_clip ones.
    """

    def __init__(self, width, hidden_width, act_layer=QuickGELU):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden_width)
        self.gelu = act_layer()
        self.c_proj = nn.Linear(hidden_width, width)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width, heads, act_layer=QuickGELU):
        super().__init__()
        self.attn = MultiheadSelfAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = MLP(width, width * 4, act_layer)
        self.ln_2 = LayerNorm(width)

    def forward(self, x, causal=False):
        x = x + self.attn(self.ln_1(x), causal=causal)
        return x + self.mlp(self.ln_2(x))

    def forward_with_first_query_weights(self, x):
        """Block output plus the first token's attention weights over all keys (``B x N``)."""
        attended, weights = self.attn.forward_with_first_query_weights(self.ln_1(x))
        x = x + attended
        return x + self.mlp(self.ln_2(x)), weights


class Transformer(nn.Module):
    """A stack of residual attention blocks, callable as OpenAI's.

    ``transformer(x)`` keeps OpenAI's convention, so code written for OpenAI's
    CLIP works unchanged: sequence-first ``N_seq x B x width`` input, and the
    text tower's causal mask built in (``causal=True`` here, where OpenAI's holds
    an ``attn_mask``). The toolkit calls ``transformer(x, batch_first=True)`` on
    ``B x N_seq x width`` (no transposes); module hooks see both calls.

    ``gradient_checkpointing = True`` recomputes each block's activations in the
    backward pass instead of keeping them (same gradients, far less memory for
    e.g. the text tower over thousands of class prompts; about 30% more compute).
    """

    def __init__(self, width, layers, heads, act_layer=QuickGELU, causal=False):
        super().__init__()
        self.width = width
        self.layers = layers
        self.causal = causal
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, act_layer) for _ in range(layers))
        self.gradient_checkpointing = False

    def forward(self, x, batch_first=False, causal=None):
        """``causal`` defaults to the tower's own (True for CLIP's text tower)."""
        if causal is not None and not batch_first:
            raise TypeError(
                "transformer(x, causal=...) without batch_first=True: OpenAI's call takes only x "
                "(sequence-first); the toolkit's batch-first call is transformer(x, batch_first=True, causal=...)"
            )
        causal = self.causal if causal is None else causal
        if not batch_first:
            return self._run_blocks(x.transpose(0, 1), causal).transpose(0, 1)
        return self._run_blocks(x, causal)

    def _run_blocks(self, x, causal):
        checkpointed = self.gradient_checkpointing and torch.is_grad_enabled()
        for block in self.resblocks:
            if checkpointed:
                x = checkpoint(block, x, causal, use_reentrant=False)
            else:
                x = block(x, causal=causal)
        return x
