"""Index samplers named by DATALOADER.*.SAMPLER."""
from torch.utils.data import RandomSampler, SequentialSampler

AVAILABLE_SAMPLERS = ("RandomSampler", "SequentialSampler")


def build_sampler(sampler_type, cfg=None, data_source=None, batch_size=32, n_domain=0, n_ins=2):
    """RandomSampler (drawn from the globally seeded torch RNG) or SequentialSampler."""
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    raise ValueError(f"Unknown sampler {sampler_type!r} (DATALOADER.*.SAMPLER); supported: {list(AVAILABLE_SAMPLERS)}")
