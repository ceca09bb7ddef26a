"""build_optimizer: OPTIM.* -> a torch optimizer."""
import warnings

import torch
from torch import nn

from ..config.checks import check_choice, check_number_at_least

AVAILABLE_OPTIMIZERS = ("adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw")


def _staged_param_groups(model, optim_cfg):
    """Layers in OPTIM.NEW_LAYERS train at LR; the rest at LR * BASE_LR_MULT."""
    if not isinstance(model, nn.Module):
        raise TypeError("OPTIM.STAGED_LR needs an nn.Module (not a parameter list) to tell new layers from base layers")
    new_layers = optim_cfg.NEW_LAYERS
    new_layers = [new_layers] if isinstance(new_layers, str) else list(new_layers)
    if not new_layers:
        warnings.warn("OPTIM.STAGED_LR is True but OPTIM.NEW_LAYERS is empty: every layer gets the reduced LR")
    children = dict(model.named_children())
    for i, name in enumerate(new_layers):
        check_choice(f"OPTIM.NEW_LAYERS[{i}]", name, tuple(children))
    base_params, new_params = [], []
    for name, module in children.items():
        (new_params if name in new_layers else base_params).extend(module.parameters())
    return [
        {"params": base_params, "lr": optim_cfg.LR * optim_cfg.BASE_LR_MULT},
        {"params": new_params},
    ]


def check_optimizer_cfg(optim_cfg):
    """ConfigError on an OPTIM.* value torch would reject only once the model is built."""
    check_choice("OPTIM.NAME", optim_cfg.NAME, AVAILABLE_OPTIMIZERS)
    check_number_at_least("OPTIM.LR", optim_cfg.LR, 0)
    check_number_at_least("OPTIM.WEIGHT_DECAY", optim_cfg.WEIGHT_DECAY, 0)


def build_optimizer(model, optim_cfg, param_groups=None):
    """Optimizer over `model` (module or iterable of parameters) or explicit `param_groups`."""
    check_optimizer_cfg(optim_cfg)
    name = optim_cfg.NAME
    if param_groups is not None and optim_cfg.STAGED_LR:
        warnings.warn("OPTIM.STAGED_LR is ignored because explicit param_groups were given")
    if param_groups is None:
        if optim_cfg.STAGED_LR:
            param_groups = _staged_param_groups(model, optim_cfg)
        else:
            param_groups = model.parameters() if isinstance(model, nn.Module) else model
    lr, wd = optim_cfg.LR, optim_cfg.WEIGHT_DECAY
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)
    eps = optim_cfg.ADAM_EPS
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=wd, betas=betas, eps=eps, amsgrad=name == "amsgrad")
    if name == "sgd":
        return torch.optim.SGD(
            param_groups,
            lr=lr,
            momentum=optim_cfg.MOMENTUM,
            weight_decay=wd,
            dampening=optim_cfg.SGD_DAMPNING,
            nesterov=optim_cfg.SGD_NESTEROV,
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(param_groups, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd, alpha=optim_cfg.RMSPROP_ALPHA)
    if name == "radam":
        return torch.optim.RAdam(param_groups, lr=lr, weight_decay=wd, betas=betas, eps=eps)
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=wd, betas=betas, eps=eps)
