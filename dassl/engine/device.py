"""Choosing the device from USE_CUDA: CPU fallback unless CUDA was asked for explicitly.

A process trains on one device. Several GPUs are used through torchrun (one
process per GPU, DistributedDataParallel; see dassl.engine.distributed).
"""
import torch

from ..config import key_source
from ..utils.errors import CudaUnavailableError
from .distributed import requested_world_size


def resolve_device(cfg):
    """cuda if available and USE_CUDA, else cpu.

    USE_CUDA is True by default, so a machine without a GPU simply runs on CPU;
    but if a config file or the command line set USE_CUDA True explicitly and
    there is no usable GPU, that request cannot be honoured and we fail early.
    """
    if cfg.USE_CUDA and torch.cuda.is_available():
        note_unused_gpus(torch.cuda.device_count(), requested_world_size())
        return torch.device("cuda")
    source = key_source(cfg, "USE_CUDA")
    if cfg.USE_CUDA and source is not None:
        raise CudaUnavailableError(
            f"USE_CUDA True was set explicitly (from {source}) but no CUDA device is available "
            "(torch.cuda.is_available() is False). Set USE_CUDA False to run on CPU, or check the GPU / CUDA_VISIBLE_DEVICES."
        )
    return torch.device("cpu")


def note_unused_gpus(n_gpus, n_processes):
    """One line when several GPUs are visible to a single process: it uses one, and how to use them all."""
    if n_gpus > 1 and n_processes <= 1:
        print(
            f"{n_gpus} GPUs are visible; this run trains on one (cuda:0). To train on all {n_gpus}, start it with "
            f"`torchrun --nproc_per_node={n_gpus} train.py ...` (the batch stays the global batch)"
        )
