"""Replay the random draws of OpenAI's ``build_model`` on the global torch generator.

OpenAI's ``build_model`` first constructs a randomly initialised CLIP (each
module's default init in construction order, then ``initialize_parameters``)
and only then loads the weights. Code that seeds torch before loading the
backbone (every CoOp-family trainer) therefore initialises its prompts from a
generator advanced by those draws. This toolkit builds CLIP without random
init, so it replays the same draws (same kind, same element count, same order)
into a scratch buffer: seed for seed, prompts start where the reference's do.

A draw is ``(kind, numel)``. ``uniform`` covers ``kaiming_uniform_``,
``xavier_uniform_`` and bias init (CPU ``uniform_`` takes one number from the
generator per element, serially, so consecutive uniform draws are replayed as
one); ``normal`` covers ``torch.randn`` and ``nn.init.normal_``, replayed one
by one on a contiguous float32 tensor of the same size (CPU ``normal_``'s
consumption depends on the size).
"""
import torch

UNIFORM = "uniform"
NORMAL = "normal"
UNIFORM_CHUNK = 1 << 22


def _linear(in_features, out_features, bias=True):
    """nn.Linear / nn.Conv2d default init: kaiming-uniform weight, then uniform bias."""
    return [(UNIFORM, in_features * out_features)] + ([(UNIFORM, out_features)] if bias else [])


def _residual_block(width):
    """ResidualAttentionBlock: nn.MultiheadAttention (out_proj Linear init, then xavier
    in_proj; its biases are zero-filled) and the MLP's c_fc and c_proj Linears."""
    return _linear(width, width) + [(UNIFORM, 3 * width * width)] + _linear(width, 4 * width) + _linear(4 * width, width)


def _transformer(width, layers):
    return [draw for _ in range(layers) for draw in _residual_block(width)]


def _vit_tower(config):
    width, patch = config.vision_width, config.vision_patch_size
    grid = config.image_resolution // patch
    return (
        _linear(3 * patch * patch, width, bias=False)  # conv1
        + [(NORMAL, width), (NORMAL, (grid * grid + 1) * width)]  # class and positional embeddings
        + _transformer(width, config.vision_layers)
        + [(NORMAL, width * config.embed_dim)]  # proj
    )


def _bottleneck(inplanes, planes, stride):
    draws = _linear(inplanes, planes, bias=False) + _linear(9 * planes, planes, bias=False)
    draws += _linear(planes, 4 * planes, bias=False)
    if stride > 1 or inplanes != 4 * planes:
        draws += _linear(inplanes, 4 * planes, bias=False)  # downsample conv
    return draws


def _resnet_tower(config):
    width = config.vision_width
    draws = _linear(27, width // 2, bias=False) + _linear(9 * (width // 2), width // 2, bias=False)
    draws += _linear(9 * (width // 2), width, bias=False)
    inplanes = width
    for stage, blocks in enumerate(config.vision_layers):
        planes = width * 2 ** stage
        for index in range(blocks):
            draws += _bottleneck(inplanes, planes, 2 if stage and index == 0 else 1)
            inplanes = 4 * planes
    grid = config.image_resolution // 32
    draws.append((NORMAL, (grid * grid + 1) * inplanes))  # attnpool positional embedding
    for out_features in (inplanes, inplanes, inplanes, config.embed_dim):  # k, q, v, c_proj
        draws += _linear(inplanes, out_features)
    return draws


def _initialize_parameters(config):
    """CLIP.initialize_parameters: normal re-init of embeddings and projection weights."""
    width = config.transformer_width
    draws = [(NORMAL, config.vocab_size * width), (NORMAL, config.context_length * width)]
    if isinstance(config.vision_layers, tuple):
        pool_width = config.vision_width * 32
        draws += [(NORMAL, pool_width * pool_width)] * 3 + [(NORMAL, pool_width * config.embed_dim)]
    for _ in range(config.transformer_layers):
        draws += [(NORMAL, 3 * width * width), (NORMAL, width * width)]
        draws += [(NORMAL, 4 * width * width), (NORMAL, 4 * width * width)]
    return draws + [(NORMAL, width * config.embed_dim)]


def reference_init_draws(config):
    """The ``(kind, numel)`` draws OpenAI's ``build_model`` makes for a ``clip.model.CLIPConfig``."""
    vision = _resnet_tower(config) if isinstance(config.vision_layers, tuple) else _vit_tower(config)
    text = _transformer(config.transformer_width, config.transformer_layers)
    token_embedding = [(NORMAL, config.vocab_size * config.transformer_width)]
    return vision + text + token_embedding + _initialize_parameters(config)


def _merged(draws):
    merged = []
    for kind, numel in draws:
        if merged and kind == UNIFORM and merged[-1][0] == UNIFORM:
            merged[-1] = (UNIFORM, merged[-1][1] + numel)
        else:
            merged.append((kind, numel))
    return merged


def replay_reference_init(config):
    """Advance the global CPU generator exactly as OpenAI's ``build_model`` would for ``config``."""
    draws = _merged(reference_init_draws(config))
    largest_normal = max((numel for kind, numel in draws if kind == NORMAL), default=0)
    scratch = torch.empty(max(largest_normal, UNIFORM_CHUNK), dtype=torch.float32)
    for kind, numel in draws:
        if kind == NORMAL:
            scratch[:numel].normal_()
            continue
        for start in range(0, numel, UNIFORM_CHUNK):
            scratch[: min(UNIFORM_CHUNK, numel - start)].uniform_()
