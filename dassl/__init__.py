"""Dassl.pytorch-compatible engine: config, registries, data, trainer loop, optim, evaluation, utils."""
__version__ = "0.6.3+toolkit"
