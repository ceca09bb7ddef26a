"""Deep visual prompts (VPT-deep): learned tokens appended to the ViT stream before each block.

The `clip` hook `VisionTransformer.forward_features(deep_prompts=...)` appends
them after the image tokens (no positional embedding) and drops them after
the block; this module only owns the parameters and says which block gets what.
"""
import torch
from torch import nn

from clip.vision_transformer import VisionTransformer
from dassl.config import ConfigError


def vit_block_count(clip_model, method):
    """Number of blocks of CLIP's ViT image tower; visual prompts need its per-block hooks."""
    if not isinstance(clip_model.visual, VisionTransformer):
        raise ConfigError(
            f"{method} inserts prompts into the blocks of a ViT image tower, but this CLIP has a "
            f"{type(clip_model.visual).__name__}; use a ViT backbone (MODEL.BACKBONE.NAME ViT-B/16 or ViT-B/32)"
        )
    return len(clip_model.visual.transformer.resblocks)


class DeepVisualPrompts(nn.Module):
    """`n_ctx` prompts for each of the first `n_blocks` blocks, N(0, 0.02) in CLIP's dtype."""

    def __init__(self, n_blocks, n_ctx, width, dtype):
        super().__init__()
        if n_blocks < 0 or n_ctx < 1:
            raise ConfigError(
                f"deep visual prompts need n_ctx >= 1 and n_blocks >= 0, got n_ctx={n_ctx}, n_blocks={n_blocks}; "
                "set TRAINER.VPT.N_CTX to at least 1"
            )
        prompts = torch.empty(n_blocks, n_ctx, width, dtype=dtype)
        nn.init.normal_(prompts, std=0.02)
        self.prompts = nn.Parameter(prompts)

    @property
    def n_blocks(self):
        return self.prompts.shape[0]

    def per_block(self, total_blocks):
        """The `deep_prompts` argument of forward_features: this module's prompts, then None."""
        if self.n_blocks > total_blocks:
            raise ValueError(f"{self.n_blocks} blocks of visual prompts for an image tower of {total_blocks} blocks")
        return list(self.prompts) + [None] * (total_blocks - self.n_blocks)
