"""Pytest root: keeps the repository folder importable (trainers/, datasets/ are not installed),
and points the frozen image-feature cache at a temporary folder.

Tests use tiny models, for which one torch thread is many times faster than
several competing for the CI machine's two cores.
"""
import os
import sys

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_tensorboard(monkeypatch):
    """Tensorboard is optional: every run must work (and stay fast) without it."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)


@pytest.fixture(autouse=True, scope="session")
def feature_cache_in_a_temporary_folder(tmp_path_factory):
    """Evaluations cache frozen image features by default; keep the tests' files out of ~/.cache."""
    previous = os.environ.get("CLIP_PROMPT_TOOLKIT_CACHE")
    os.environ["CLIP_PROMPT_TOOLKIT_CACHE"] = str(tmp_path_factory.mktemp("clip_prompt_toolkit_cache"))
    yield
    if previous is None:
        del os.environ["CLIP_PROMPT_TOOLKIT_CACHE"]
    else:
        os.environ["CLIP_PROMPT_TOOLKIT_CACHE"] = previous
