"""Choosing the device from USE_CUDA: CPU fallback unless CUDA was asked for explicitly."""
import torch

from ..config import key_source
from ..utils.errors import CudaUnavailableError


def resolve_device(cfg):
    """cuda if available and USE_CUDA, else cpu.

    USE_CUDA is True by default, so a machine without a GPU simply runs on CPU;
    but if a config file or the command line set USE_CUDA True explicitly and
    there is no usable GPU, that request cannot be honoured and we fail early.
    """
    if cfg.USE_CUDA and torch.cuda.is_available():
        return torch.device("cuda")
    source = key_source(cfg, "USE_CUDA")
    if cfg.USE_CUDA and source is not None:
        raise CudaUnavailableError(
            f"USE_CUDA True was set explicitly (from {source}) but no CUDA device is available "
            "(torch.cuda.is_available() is False). Set USE_CUDA False to run on CPU, or check the GPU / CUDA_VISIBLE_DEVICES."
        )
    return torch.device("cpu")
