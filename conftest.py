"""Pytest root: keeps the repository folder importable (trainers/, datasets/ are not installed).

Tests use tiny models, for which one torch thread is many times faster than
several competing for the CI machine's two cores.
"""
import torch

torch.set_num_threads(1)
