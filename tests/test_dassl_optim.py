"""Optimizers and per-epoch LR schedules (stepped the CoOp way, once per epoch)."""
import math

import pytest
import torch

from dassl.config import get_cfg_default
from dassl.optim import build_lr_scheduler, build_optimizer


def optim_cfg(**values):
    cfg = get_cfg_default().OPTIM
    for key, value in values.items():
        cfg[key] = value
    return cfg


def lrs_per_epoch(cfg, epochs):
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer([param], cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_cosine_with_constant_warmup_matches_coop_schedule():
    cfg = optim_cfg(NAME="sgd", LR=0.002, LR_SCHEDULER="cosine", MAX_EPOCH=10, WARMUP_EPOCH=1, WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5)
    expected = [1e-5, 2.000e-3, 1.951e-3, 1.809e-3, 1.588e-3, 1.309e-3, 1.000e-3, 6.91e-4, 4.12e-4, 1.91e-4]
    assert lrs_per_epoch(cfg, 10) == pytest.approx(expected, rel=2e-3)


def test_linear_warmup_then_single_step():
    cfg = optim_cfg(NAME="sgd", LR=0.1, LR_SCHEDULER="single_step", STEPSIZE=(2,), GAMMA=0.5, WARMUP_EPOCH=2, WARMUP_TYPE="linear", WARMUP_MIN_LR=1e-3)
    assert lrs_per_epoch(cfg, 6) == pytest.approx([1e-3, 0.05, 0.1, 0.1, 0.05, 0.05])


def test_warmup_scheduler_state_is_plain_and_restores():
    cfg = optim_cfg(NAME="sgd", LR=0.002, LR_SCHEDULER="cosine", MAX_EPOCH=10, WARMUP_EPOCH=1, WARMUP_TYPE="constant")
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer([param], cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    assert isinstance(state["successor"], dict) and state["successor"]["last_epoch"] == 2
    fresh_optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg)
    fresh = build_lr_scheduler(fresh_optimizer, cfg)
    fresh.load_state_dict(state)
    fresh_optimizer.load_state_dict(optimizer.state_dict())
    optimizer.step()
    scheduler.step()
    fresh_optimizer.step()
    fresh.step()
    assert fresh_optimizer.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"])


OPTIMIZER_CLASSES = {
    "adam": torch.optim.Adam,
    "amsgrad": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "radam": torch.optim.RAdam,
    "adamw": torch.optim.AdamW,
}


@pytest.mark.parametrize("name, expected", OPTIMIZER_CLASSES.items())
def test_every_optimizer_name_builds(name, expected):
    optimizer = build_optimizer(torch.nn.Linear(2, 2), optim_cfg(NAME=name, LR=0.01))
    assert type(optimizer) is expected
    assert optimizer.param_groups[0].get("amsgrad", False) == (name == "amsgrad")


def test_staged_lr_lowers_base_layers_only():
    model = torch.nn.Sequential()
    model.add_module("backbone", torch.nn.Linear(2, 2))
    model.add_module("head", torch.nn.Linear(2, 2))
    optimizer = build_optimizer(model, optim_cfg(NAME="sgd", LR=0.1, STAGED_LR=True, NEW_LAYERS=("head",), BASE_LR_MULT=0.1))
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.01, 0.1])


def test_unknown_names_fail_with_the_choices():
    with pytest.raises(ValueError, match="adamw"):
        build_optimizer(torch.nn.Linear(2, 2), optim_cfg(NAME="adamx"))
    optimizer = build_optimizer(torch.nn.Linear(2, 2), optim_cfg())
    with pytest.raises(ValueError, match="cosine"):
        build_lr_scheduler(optimizer, optim_cfg(LR_SCHEDULER="cosin"))


def test_iteration_mode_schedule_steps_before_each_optimizer_step():
    cfg = optim_cfg(NAME="sgd", LR=0.1, LR_SCHEDULER="cosine", MAX_ITER=4, WARMUP_ITER=2, WARMUP_TYPE="linear")
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(4):
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
    assert lrs == pytest.approx([0.05, 0.1, 0.1 * 0.5 * (1 + math.cos(math.pi / 4)), 0.05])
    assert set(scheduler.state_dict()) >= {"last_epoch", "base_lrs"} and scheduler.state_dict()["last_epoch"] == 4
