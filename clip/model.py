"""The CLIP model (OpenAI parameter names) and ``build_model`` for OpenAI state dicts."""
import math
import re
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from torch import nn

from .layers import LayerNorm, MultiheadSelfAttention, QuickGELU, Transformer, heads_of_width, openai_heads
from .modified_resnet import DOWNSAMPLING, EXPANSION, ModifiedResNet
from .reference_init import replay_reference_init
from .transform import CLIP_MEAN, CLIP_STD
from .vision_transformer import VisionTransformer, VisualOutput

__all__ = [
    "CLIP", "CLIPConfig", "HEAD_WIDTH_KEY", "VisualOutput", "build_model", "convert_weights", "infer_config",
    "load_checked_state_dict",
]

CHECKPOINT_ONLY_KEYS = ("input_resolution", "context_length", "vocab_size")
# State-dict entry (an integer tensor) of a model whose heads do not follow OpenAI's rule.
HEAD_WIDTH_KEY = "attention_head_width"
RESNET_FEATURE_MULTIPLIER = 8 * EXPANSION


def vision_tower_heads(vision_layers, vision_width, head_width=None):
    """Heads of the image tower: its attention width (ViT width, or the ResNet attention
    pool's ``32 * width``) split by OpenAI's rule, or into ``head_width``-channel heads."""
    resnet = isinstance(vision_layers, (tuple, list))
    width = vision_width * RESNET_FEATURE_MULTIPLIER if resnet else vision_width
    return openai_heads(width) if head_width is None else heads_of_width(width, head_width)


class CLIP(nn.Module):
    """Image tower (ViT or ModifiedResNet) + causal text transformer, OpenAI's layout.

    ``vision_layers`` as a 4-tuple selects the ModifiedResNet tower, an int the ViT.
    The image tower's heads follow OpenAI's rule (``clip.layers.openai_heads``)
    unless ``vision_heads`` (the ViT's heads, or the ResNet attention pool's) or
    ``head_width`` is given; with ``head_width`` both towers use heads of that
    width and the state dict records it (``HEAD_WIDTH_KEY``) so ``build_model``
    rebuilds the same network.
    ``act_layer`` is the transformers' MLP activation (OpenAI's: QuickGELU).
    ``image_mean`` / ``image_std``: the normalisation the weights were trained with.
    """

    image_mean = CLIP_MEAN
    image_std = CLIP_STD

    def __init__(
        self,
        embed_dim: int,
        image_resolution: int,
        vision_layers: Union[Tuple[int, int, int, int], int],
        vision_width: int,
        vision_patch_size: int,
        context_length: int,
        vocab_size: int,
        transformer_width: int,
        transformer_heads: int,
        transformer_layers: int,
        vision_heads: Union[int, None] = None,
        act_layer: type = QuickGELU,
        head_width: Optional[int] = None,
    ):
        super().__init__()
        if head_width is not None and transformer_heads != heads_of_width(transformer_width, head_width):
            raise ValueError(
                f"transformer_heads={transformer_heads} does not split width {transformer_width} into "
                f"{head_width}-channel heads"
            )
        self.context_length = context_length
        self.vocab_size = vocab_size
        if vision_heads is None:
            vision_heads = vision_tower_heads(vision_layers, vision_width, head_width)
        if isinstance(vision_layers, (tuple, list)):
            self.visual = ModifiedResNet(
                layers=tuple(vision_layers),
                output_dim=embed_dim,
                heads=vision_heads,
                input_resolution=image_resolution,
                width=vision_width,
            )
        else:
            self.visual = VisionTransformer(
                input_resolution=image_resolution,
                patch_size=vision_patch_size,
                width=vision_width,
                layers=vision_layers,
                heads=vision_heads,
                output_dim=embed_dim,
                act_layer=act_layer,
            )
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads, act_layer, causal=True)
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        if head_width is not None:
            self.register_buffer(HEAD_WIDTH_KEY, torch.tensor(head_width))
        self._init_text_parameters()

    def _init_text_parameters(self):
        width = self.transformer.width
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    @property
    def dtype(self):
        return self.visual.conv1.weight.dtype

    def encode_image(self, images):
        return self.visual(images.type(self.dtype))

    def encode_text(self, text):
        """Token ids ``N x context_length`` -> ``N x embed_dim`` (EOT = largest id per row)."""
        if text.dim() != 2:
            raise ValueError(f"encode_text expects token ids of shape (N, L), got {tuple(text.shape)}")
        eot_indices = text.argmax(dim=-1)
        length = int(eot_indices.max()) + 1 if text.shape[0] else 1
        return self.encode_text_from_embeddings(
            self.token_embedding(text[:, :length]), eot_indices, truncate=False
        )

    def encode_text_from_embeddings(self, embeddings, eot_indices, truncate=True):
        """Prompt embeddings ``N x L x width`` (L <= context length) + one EOT index per row
        -> ``N x embed_dim``. ``truncate`` cuts the sequences to ``max(eot) + 1``, which is
        exact under the causal mask."""
        width = self.transformer.width
        if embeddings.dim() != 3 or embeddings.shape[-1] != width:
            raise ValueError(f"expected embeddings of shape (N, L, {width}), got {tuple(embeddings.shape)}")
        batch, length, _ = embeddings.shape
        if length > self.context_length:
            raise ValueError(f"sequence length {length} exceeds the context length {self.context_length}")
        eot_indices = torch.as_tensor(eot_indices, device=embeddings.device).long()
        if eot_indices.shape != (batch,):
            raise ValueError(f"expected {batch} EOT indices (one per row), got shape {tuple(eot_indices.shape)}")
        if batch and (int(eot_indices.min()) < 0 or int(eot_indices.max()) >= length):
            raise ValueError(f"EOT indices must lie in [0, {length}), got {eot_indices.tolist()}")
        if truncate and batch:
            length = int(eot_indices.max()) + 1
            embeddings = embeddings[:, :length]
        x = embeddings.type(self.dtype) + self.positional_embedding[:length].type(self.dtype)
        x = self.ln_final(self.transformer(x, batch_first=True))
        return x[torch.arange(batch, device=x.device), eot_indices] @ self.text_projection

    def forward(self, images, text):
        """Scaled cosine-similarity logits, per image and per text, as OpenAI's CLIP."""
        image_features = self.encode_image(images)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


@dataclass(frozen=True)
class CLIPConfig:
    """CLIP's constructor arguments, as read off a state dict."""

    embed_dim: int
    image_resolution: int
    vision_layers: Union[Tuple[int, int, int, int], int]
    vision_width: int
    vision_patch_size: Union[int, None]
    context_length: int
    vocab_size: int
    transformer_width: int
    transformer_heads: int
    transformer_layers: int
    head_width: Optional[int] = None


def _count_blocks(state_dict, prefix):
    """Number of distinct integer indices ``i`` among keys ``prefix.i.*``."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return len({m.group(1) for m in map(pattern.match, state_dict) if m})


def _grid_size(num_positions, key):
    grid = round(math.sqrt(num_positions - 1))
    if grid * grid + 1 != num_positions:
        raise ValueError(f"{key} has {num_positions} rows, which is not grid*grid + 1")
    return grid


def _vision_config(state_dict):
    if "visual.proj" in state_dict:
        width = state_dict["visual.conv1.weight"].shape[0]
        patch_size = state_dict["visual.conv1.weight"].shape[-1]
        grid = _grid_size(state_dict["visual.positional_embedding"].shape[0], "visual.positional_embedding")
        layers = _count_blocks(state_dict, "visual.transformer.resblocks")
        return dict(vision_layers=layers, vision_width=width, vision_patch_size=patch_size,
                    image_resolution=grid * patch_size)
    layers = tuple(_count_blocks(state_dict, f"visual.layer{stage}") for stage in range(1, 5))
    width = state_dict["visual.layer1.0.conv1.weight"].shape[0]
    grid = _grid_size(state_dict["visual.attnpool.positional_embedding"].shape[0],
                      "visual.attnpool.positional_embedding")
    return dict(vision_layers=layers, vision_width=width, vision_patch_size=None,
                image_resolution=grid * DOWNSAMPLING)


def infer_config(state_dict):
    """Read CLIP's architecture off an OpenAI-layout state dict (ViT or ModifiedResNet).

    Heads follow OpenAI's rule, unless the state dict records its head width."""
    head_width = int(state_dict[HEAD_WIDTH_KEY]) if HEAD_WIDTH_KEY in state_dict else None
    try:
        width = state_dict["ln_final.weight"].shape[0]
        config = CLIPConfig(
            embed_dim=state_dict["text_projection"].shape[1],
            context_length=state_dict["positional_embedding"].shape[0],
            vocab_size=state_dict["token_embedding.weight"].shape[0],
            transformer_width=width,
            transformer_heads=openai_heads(width) if head_width is None else heads_of_width(width, head_width),
            transformer_layers=_count_blocks(state_dict, "transformer.resblocks"),
            head_width=head_width,
            **_vision_config(state_dict),
        )
    except KeyError as error:
        raise ValueError(
            f"state dict has no key {error.args[0]!r}, so its architecture cannot be inferred; "
            "is this an OpenAI CLIP checkpoint (keys like 'visual.conv1.weight', 'text_projection')?"
        ) from None
    return config


def convert_weights(model):
    """Cast Linear/Conv/attention weights and the projection matrices to fp16, as OpenAI does.

    Embeddings, LayerNorm/BatchNorm parameters and ``logit_scale`` stay fp32.
    """
    half_attributes = ("in_proj_weight", "in_proj_bias", "text_projection", "proj")
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            module.weight.data = module.weight.data.half()
            if module.bias is not None:
                module.bias.data = module.bias.data.half()
        if isinstance(module, (MultiheadSelfAttention, CLIP, VisionTransformer)):
            for name in half_attributes:
                parameter = getattr(module, name, None)
                if isinstance(parameter, nn.Parameter):
                    parameter.data = parameter.data.half()
    return model


def _describe_key_mismatch(missing, unexpected):
    parts = []
    if missing:
        parts.append(f"missing keys {missing[:5]}" + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
    if unexpected:
        parts.append(
            f"unexpected keys {unexpected[:5]}" + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else "")
        )
    return "; ".join(parts)


def build_model(state_dict):
    """Rebuild an eager CLIP from an OpenAI state dict: fp16 weights (see ``convert_weights``),
    strict loading, eval mode.

    The model is built without random init (on the meta device, then the weights
    are assigned), and the global generator is advanced exactly as OpenAI's
    ``build_model`` advances it (``clip.reference_init``), so a seed set before
    loading gives the reference code's prompt initialisation."""
    state_dict = {k: v for k, v in state_dict.items() if k not in CHECKPOINT_ONLY_KEYS}
    config = infer_config(state_dict)
    with torch.device("meta"):
        model = convert_weights(CLIP(**vars(config)))
    load_checked_state_dict(model, state_dict, "is this an OpenAI CLIP checkpoint?")
    replay_reference_init(config)
    return model.eval()


def load_checked_state_dict(model, state_dict, hint):
    """Strict loading whose errors fit one line: the first mismatched keys or shapes, then ``hint``.

    The weights are assigned as copies in the model's dtypes, so a model built on
    the meta device (no random init) is materialised and the caller's tensors are
    never shared."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"state dict does not match the inferred CLIP architecture: {_describe_key_mismatch(missing, unexpected)}; "
            + hint
        )
    wrong_shapes = [
        f"{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape
    ]
    if wrong_shapes:
        raise ValueError(
            f"state dict shapes do not match the inferred CLIP architecture ({'; '.join(wrong_shapes[:5])}); "
            + hint
        )
    weights = {k: state_dict[k].to(v.dtype, copy=True) if k in state_dict else torch.zeros((), dtype=v.dtype)
               for k, v in expected.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    return model
