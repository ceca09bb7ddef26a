"""CLIP's ViT image tower, with the feature hooks prompt-learning methods need."""
from typing import NamedTuple, Optional

import torch
from torch import nn

from .layers import LayerNorm, QuickGELU, Transformer

TOKEN_MODES = (None, "proj", "ln_post_proj")


class VisualOutput(NamedTuple):
    """What ``forward_features`` returns; fields not requested are None.

    pooled:    ``B x embed_dim`` image feature, equal to ``encode_image``
               when no prompts are given.
    tokens:    ``B x N_img x embed_dim`` final image tokens (CLS first).
    attention: ``B x (N_img - 1)`` last block's CLS-to-patch attention.
    """

    pooled: torch.Tensor
    tokens: Optional[torch.Tensor] = None
    attention: Optional[torch.Tensor] = None


def _batched_prompt(prompt, batch, width, where):
    """Accept ``n x width`` or ``B x n x width`` prompts; return ``B x n x width``."""
    if prompt.dim() == 2:
        prompt = prompt.unsqueeze(0).expand(batch, -1, -1)
    if prompt.dim() != 3 or prompt.shape[0] != batch or prompt.shape[2] != width:
        raise ValueError(
            f"{where} has shape {tuple(prompt.shape)}; expected (n, {width}) or ({batch}, n, {width})"
        )
    return prompt


class VisionTransformer(nn.Module):
    """Patch embedding + CLS token + learned positions + pre-norm transformer (OpenAI names)."""

    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim, act_layer=QuickGELU):
        super().__init__()
        if input_resolution % patch_size:
            raise ValueError(
                f"image resolution {input_resolution} is not a multiple of patch size {patch_size}"
            )
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        scale = width ** -0.5
        grid = input_resolution // patch_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, act_layer)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def embed(self, images):
        """Images -> ``B x N_img x width`` stream entering the first block (after ln_pre)."""
        size = self.input_resolution
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
            raise ValueError(
                f"expected images of shape (B, 3, {size}, {size}), got {tuple(images.shape)}; "
                f"resize them with clip's preprocessing (INPUT.SIZE must be {size})"
            )
        x = self.conv1(images.to(self.conv1.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.ln_pre(x)

    def forward(self, images):
        x = self.transformer(self.embed(images), batch_first=True)
        return self.ln_post(x[:, 0]) @ self.proj

    def forward_features(self, images, deep_prompts=None, prompt_fn=None, tokens=None, cls_attention=False):
        """Image features with per-block prompt insertion and optional extra outputs.

        deep_prompts: one entry per block (``None``, ``n x width`` or ``B x n x width``),
            appended after the image tokens (no positional embedding) before that
            block and dropped after it.
        prompt_fn(block_index, x): called before each block (0-based index) with the
            incoming ``B x N_img x width`` stream (earlier prompts removed); returns
            ``None`` or ``B x K x width`` tokens appended after that block's deep
            prompts and dropped after it.
        tokens: ``None``, ``"proj"`` (final image tokens @ proj) or ``"ln_post_proj"``
            (ln_post(tokens) @ proj).
        cls_attention: also return the last block's head-averaged CLS-to-patch
            attention (columns 1..N_img-1 of the softmax over all keys).
        """
        blocks = self.transformer.resblocks
        if tokens not in TOKEN_MODES:
            raise ValueError(f"tokens must be one of {TOKEN_MODES}, got {tokens!r}")
        if deep_prompts is not None and len(deep_prompts) != len(blocks):
            raise ValueError(
                f"deep_prompts needs one entry per block ({len(blocks)}), got {len(deep_prompts)}; "
                "use None for blocks without prompts"
            )
        x = self.embed(images)
        batch, num_image_tokens, width = x.shape
        attention = None
        for index, block in enumerate(blocks):
            extra = []
            if deep_prompts is not None and deep_prompts[index] is not None:
                extra.append(_batched_prompt(deep_prompts[index], batch, width, f"deep_prompts[{index}]"))
            if prompt_fn is not None:
                generated = prompt_fn(index, x)
                if generated is not None:
                    extra.append(_batched_prompt(generated, batch, width, f"prompt_fn output for block {index}"))
            stream = torch.cat([x] + [p.to(x.dtype) for p in extra], dim=1) if extra else x
            if cls_attention and index == len(blocks) - 1:
                stream, weights = block.forward_with_first_query_weights(stream)
                attention = weights[:, 1:num_image_tokens]
            else:
                stream = block(stream)
            x = stream[:, :num_image_tokens]
        pooled = self.ln_post(x[:, 0]) @ self.proj
        if tokens == "proj":
            tokens = x @ self.proj
        elif tokens == "ln_post_proj":
            tokens = self.ln_post(x) @ self.proj
        return VisualOutput(pooled, tokens, attention)
