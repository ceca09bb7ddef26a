"""Text features of prompt embeddings, through CLIP's own text tower, in passes sized to the free memory."""
import os

import torch

FREE_MEMORY_FRACTION = 0.5
ACTIVATION_WIDTHS = 16
ATTENTION_MAPS = 3
ATTENTION_MAP_BYTES = 4
ESTIMATE_MARGIN = 1.5
UNMEASURED_CHUNK = 4096
MEMINFO = "/proc/meminfo"


def encode_prompt_embeddings(clip_model, prompts, eot_indices, chunk_size=0):
    """(N, L, D) prompt embeddings -> (N, embed_dim) text features (not normalised).

    `chunk_size` N > 0 runs at most N sequences per pass; 0 sizes the passes
    to the free memory (`text_chunk_size`). Chunks bound the transient memory
    of large batches (e.g. CoCoOp's B x n_cls prompts at evaluation); the
    result equals a single pass.
    """
    if prompts.shape[0] != eot_indices.shape[0]:
        raise ValueError(
            f"got {prompts.shape[0]} prompts but {eot_indices.shape[0]} EOT indices; they must match one to one"
        )
    chunk_size = text_chunk_size(clip_model, prompts, eot_indices, chunk_size)
    if prompts.shape[0] <= chunk_size:
        return clip_model.encode_text_from_embeddings(prompts, eot_indices)
    return torch.cat(
        [
            clip_model.encode_text_from_embeddings(chunk, eot)
            for chunk, eot in zip(prompts.split(chunk_size), eot_indices.split(chunk_size))
        ]
    )


def text_chunk_size(clip_model, prompts, eot_indices, chunk_size):
    """Sequences per text-tower pass for the setting `chunk_size`: N > 0 as given, 0 automatic.

    Automatic is one pass while autograd records the graph: training keeps
    every chunk's activations until the backward pass, so chunks would not
    lower the peak, only add passes (a fixed N still splits them, which with
    gradient checkpointing bounds the recomputation). Without autograd it is
    `auto_text_chunk` at the length the tower runs, cut after the last EOT.
    """
    if chunk_size < 0:
        raise ValueError(
            f"chunk_size must be >= 0 (0 = sized to the free memory, N = at most N sequences per pass), "
            f"got {chunk_size}"
        )
    if chunk_size > 0:
        return chunk_size
    if torch.is_grad_enabled() or prompts.shape[0] == 0:
        return max(prompts.shape[0], 1)
    seq_len = int(eot_indices.max()) + 1
    dtype = text_compute_dtype(clip_model, prompts.device.type)
    return auto_text_chunk(clip_model, seq_len, prompts.device, dtype)


def auto_text_chunk(clip_model, seq_len, device, dtype):
    """Sequences of `seq_len` tokens that one no-grad pass of the text tower may hold on `device`.

    FREE_MEMORY_FRACTION of the free memory over the per-sequence estimate,
    at least 1: the rest stays free for the features of every chunk, their
    concatenation and whatever else allocates meanwhile. Where the free memory
    cannot be read (devices other than cuda and cpu, systems without
    MemAvailable), UNMEASURED_CHUNK sequences, a size that fits any GPU.
    """
    free = free_memory_bytes(device)
    if free is None:
        return UNMEASURED_CHUNK
    transformer = clip_model.transformer
    per_sequence = sequence_working_bytes(transformer.width, attention_heads_of(transformer), seq_len, dtype)
    return max(1, int(FREE_MEMORY_FRACTION * free) // per_sequence)


def sequence_working_bytes(width, heads, seq_len, dtype):
    """Estimated peak bytes one sequence takes in a no-grad text-tower pass, with a margin.

    Without autograd each block frees its activations before the next one
    runs, so layers do not add up: the peak is inside one block's MLP, about
    ACTIVATION_WIDTHS widths per token in the compute dtype (residual stream,
    normalised input, the 4 x width hidden and QuickGELU's two temporaries of
    that size, the output). Added: the fp32 attention maps (scores, mask,
    softmax) SDPA materialises when it falls back to its math kernel.
    ESTIMATE_MARGIN covers LayerNorm's fp32 copies, the allocator's rounding
    and kernel workspaces.
    """
    if min(width, heads, seq_len) < 1:
        raise ValueError(
            f"width, heads and seq_len must be >= 1, got width={width}, heads={heads}, seq_len={seq_len}"
        )
    activations = ACTIVATION_WIDTHS * seq_len * width * dtype.itemsize
    attention = ATTENTION_MAPS * heads * seq_len * seq_len * ATTENTION_MAP_BYTES
    return int(ESTIMATE_MARGIN * (activations + attention))


def attention_heads_of(transformer):
    """The largest head count among the transformer's blocks (its attention maps scale with it)."""
    return max((block.attn.heads for block in transformer.resblocks), default=1)


def text_compute_dtype(clip_model, device_type):
    """The dtype of the text tower's activations: autocast's where it is on for this device type, else CLIP's."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return clip_model.dtype


def free_memory_bytes(device):
    """Bytes new tensors on `device` can still take, or None where that cannot be read.

    CUDA: the driver's free memory plus what PyTorch's caching allocator holds
    reserved but unallocated (it hands that out first). CPU: the system's
    available memory.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "cpu":
        return available_system_memory()
    return None


def available_system_memory():
    """Linux's MemAvailable (free plus reclaimable caches), else the free pages os.sysconf reports, else None."""
    available = meminfo_available()
    if available is not None:
        return available
    if "SC_AVPHYS_PAGES" in getattr(os, "sysconf_names", {}):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def meminfo_available():
    """MemAvailable of /proc/meminfo in bytes, or None where the file or the line is missing."""
    if not os.path.exists(MEMINFO):
        return None
    with open(MEMINFO) as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def normalize(features):
    """L2-normalise along the last dimension."""
    return features / features.norm(dim=-1, keepdim=True)
