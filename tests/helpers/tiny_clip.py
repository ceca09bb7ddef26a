"""Tiny random CLIPs and OpenAI-format checkpoints of them, for fast CPU tests.

``make_tiny_clip`` builds a CLIP whose architecture ``clip.build_model`` infers
back exactly (16-channel heads by default, recorded in its state dict, so the
tiny towers still have several heads; ``head_width=None`` gives OpenAI's
``width // 64``), and
``save_openai_checkpoint`` writes it in either of OpenAI's two file formats.
"""
import contextlib
import warnings

import torch
from torch import nn

from clip.layers import TINY_HEAD_WIDTH, heads_of_width, openai_heads
from clip.model import CLIP, convert_weights

VISION_KINDS = ("vit", "resnet")
FORMATS = ("state_dict", "torchscript")


def make_tiny_clip(
    vision="vit",
    embed_dim=32,
    width=64,
    layers=2,
    vision_width=None,
    vision_layers=2,
    image_resolution=32,
    patch_size=8,
    vocab_size=49408,
    context_length=77,
    seed=0,
    head_width=TINY_HEAD_WIDTH,
):
    """A random fp32 CLIP in eval mode.

    vision="vit": ``vision_width`` defaults to 64, ``vision_layers`` is the block count.
    vision="resnet": ``vision_width`` (stem/layer1 width) defaults to 8, ``vision_layers``
    is an int (blocks in each of the 4 stages) or a 4-tuple; ``image_resolution``
    must be a multiple of 32. ``vocab_size`` 49408 keeps real tokenizer ids valid.
    """
    if vision not in VISION_KINDS:
        raise ValueError(f"vision must be one of {VISION_KINDS}, got {vision!r}")
    if vision == "resnet":
        stages = tuple(vision_layers) if isinstance(vision_layers, (tuple, list)) else (vision_layers,) * 4
        vision_width = vision_width or 8
    else:
        stages = vision_layers
        vision_width = vision_width or 64
    torch.manual_seed(seed)
    model = CLIP(
        embed_dim=embed_dim,
        image_resolution=image_resolution,
        vision_layers=stages,
        vision_width=vision_width,
        vision_patch_size=patch_size,
        context_length=context_length,
        vocab_size=vocab_size,
        transformer_width=width,
        transformer_heads=openai_heads(width) if head_width is None else heads_of_width(width, head_width),
        transformer_layers=layers,
        head_width=head_width,
    )
    return model.eval()


def randomize_(model, seed=0, scale=0.1):
    """Perturb every parameter and BatchNorm statistic (biases, LayerNorm weights...) so
    comparisons exercise all of them, not just the ones initialised non-trivially."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator).to(tensor.dtype) * scale
            if name.endswith("running_var"):
                tensor.copy_(1 + noise.abs())
            else:
                tensor.add_(noise)
    return model


class _ParameterTree(nn.Module):
    """Module tree whose state dict has exactly the given keys (scriptable, trivial forward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _parameter_tree(state_dict):
    root = _ParameterTree()
    for key, value in state_dict.items():
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, _ParameterTree())
            node = getattr(node, part)
        node.register_buffer(leaf, value.detach().clone())
    return root


def save_openai_checkpoint(model, path, fmt="state_dict"):
    """Write ``model`` as OpenAI distributes CLIP: a plain state dict (``torch.save``) or a
    TorchScript archive whose ``state_dict()`` has OpenAI's keys plus the
    ``input_resolution``/``context_length``/``vocab_size`` entries of the real archives."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    state_dict = model.state_dict()
    if fmt == "state_dict":
        torch.save(state_dict, path)
        return path
    state_dict = dict(state_dict)
    state_dict["input_resolution"] = torch.tensor(model.visual.input_resolution)
    state_dict["context_length"] = torch.tensor(model.context_length)
    state_dict["vocab_size"] = torch.tensor(model.vocab_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_parameter_tree(state_dict)), str(path))
    return path


def round_weights_to_fp16_(model):
    """Round the weights ``build_model`` stores in fp16 to fp16 values (kept fp32), so a
    model saved and reloaded through ``clip.load`` gives identical outputs."""
    return convert_weights(model).float()


@contextlib.contextmanager
def single_threaded_torch():
    """Run torch on one intra-op thread: for tiny models on shared CPUs, thread-pool
    synchronisation costs far more than the arithmetic (10-40x slower with 2 threads)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
