"""One module per dataset; importing a module registers its class in ``DATASET_REGISTRY``.

Not installed as a package (it would shadow Hugging Face ``datasets``):
``train.py`` and the tools import it from the repository.
"""
import importlib
import pkgutil


def import_all():
    """Import every dataset module so that every dataset class is registered."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
