"""Index samplers named by DATALOADER.*.SAMPLER."""
from torch.utils.data import RandomSampler, SequentialSampler

from ..config.checks import check_choice

AVAILABLE_SAMPLERS = ("RandomSampler", "SequentialSampler")


def build_sampler(sampler_type, cfg=None, data_source=None, batch_size=32, n_domain=0, n_ins=2):
    """RandomSampler (drawn from the globally seeded torch RNG) or SequentialSampler."""
    check_choice("DATALOADER.*.SAMPLER", sampler_type, AVAILABLE_SAMPLERS)
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    return SequentialSampler(data_source)
