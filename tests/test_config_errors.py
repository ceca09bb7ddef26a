"""Every bad engine config value (docs/errors.md, "config values") fails at config time.

Each case runs `train.main` with one bad override on a dataset whose folder is
missing under --root: had the check run later, reading the dataset would fail
first (DatasetNotFoundError). No run folder is created either. The builders
that read the same values (for library callers) raise the same message.
"""
import glob
import os
import sys

import pytest
import torch

import train
from dassl.config import ConfigError, apply_cfg_extensions, get_cfg_default, merge_from_file, set_value
from dassl.config.validate import check_cfg_values
from dassl.data.samplers import build_sampler
from dassl.data.transforms import build_transform
from dassl.optim import build_lr_scheduler, build_optimizer
from tests.helpers.trainer_runs import REPO

DTD_YAML = os.path.join(REPO, "configs", "datasets", "dtd.yaml")
TRANSFORM_CHOICES = (
    "random_resized_crop, random_flip, random_crop, center_crop, resize, normalize, colorjitter, "
    "randomgrayscale, gaussian_blur"
)


def fix(key):
    return f" Set {key} in the config file or on the command line."


CASES = {
    "optimizer name": (
        ["OPTIM.NAME", "sdg"],
        "OPTIM.NAME must be one of adam, amsgrad, sgd, rmsprop, radam, adamw; got 'sdg'. Did you mean \"sgd\"?"
        + fix("OPTIM.NAME"),
    ),
    "scheduler name": (
        ["OPTIM.LR_SCHEDULER", "cosin"],
        "OPTIM.LR_SCHEDULER must be one of single_step, multi_step, cosine; got 'cosin'. Did you mean \"cosine\"?"
        + fix("OPTIM.LR_SCHEDULER"),
    ),
    "warmup type": (
        ["OPTIM.WARMUP_TYPE", "constnat"],
        "OPTIM.WARMUP_TYPE must be one of constant, linear; got 'constnat'. Did you mean \"constant\"?"
        + fix("OPTIM.WARMUP_TYPE"),
    ),
    "iteration mode needs cosine": (
        ["OPTIM.MAX_ITER", "10"],
        "OPTIM.LR_SCHEDULER must be cosine in iteration mode (OPTIM.MAX_ITER > 0); got 'single_step'."
        + fix("OPTIM.LR_SCHEDULER"),
    ),
    "step epochs": (
        ["OPTIM.STEPSIZE", "()"],
        "OPTIM.STEPSIZE must be a non-empty list of integer epochs for single_step / multi_step; got ()."
        + fix("OPTIM.STEPSIZE"),
    ),
    "negative learning rate": (
        ["OPTIM.LR", "-0.1"], "OPTIM.LR must be a number >= 0; got -0.1." + fix("OPTIM.LR"),
    ),
    "negative weight decay": (
        ["OPTIM.WEIGHT_DECAY", "-1e-4"],
        "OPTIM.WEIGHT_DECAY must be a number >= 0; got -0.0001." + fix("OPTIM.WEIGHT_DECAY"),
    ),
    "negative max epoch": (
        ["OPTIM.MAX_EPOCH", "-1"], "OPTIM.MAX_EPOCH must be an integer >= 0; got -1." + fix("OPTIM.MAX_EPOCH"),
    ),
    "negative max iter": (
        ["OPTIM.MAX_ITER", "-1"], "OPTIM.MAX_ITER must be an integer >= 0; got -1." + fix("OPTIM.MAX_ITER"),
    ),
    "negative warmup iter": (
        ["OPTIM.WARMUP_ITER", "-2"], "OPTIM.WARMUP_ITER must be an integer >= 0; got -2." + fix("OPTIM.WARMUP_ITER"),
    ),
    "transform name": (
        ["--transforms", "random_flp", "normalize"],
        f"INPUT.TRANSFORMS[0] must be one of {TRANSFORM_CHOICES}; got 'random_flp'. Did you mean \"random_flip\"?"
        + fix("INPUT.TRANSFORMS"),
    ),
    "interpolation": (
        ["INPUT.INTERPOLATION", "bicubc"],
        "INPUT.INTERPOLATION must be one of bilinear, bicubic, nearest; got 'bicubc'. Did you mean \"bicubic\"?"
        + fix("INPUT.INTERPOLATION"),
    ),
    "input size shape": (
        ["INPUT.SIZE", "(224,)"],
        "INPUT.SIZE must be two positive integers (height, width), e.g. (224, 224); got (224,)." + fix("INPUT.SIZE"),
    ),
    "gaussian blur kernel": (
        ["INPUT.TRANSFORMS", "('gaussian_blur',)", "INPUT.GB_K", "4"],
        "INPUT.GB_K must be an odd positive integer (the gaussian_blur kernel size); got 4." + fix("INPUT.GB_K"),
    ),
    "train sampler": (
        ["DATALOADER.TRAIN_X.SAMPLER", "RandomSamplr"],
        "DATALOADER.TRAIN_X.SAMPLER must be one of RandomSampler, SequentialSampler; got 'RandomSamplr'. "
        "Did you mean \"RandomSampler\"?" + fix("DATALOADER.TRAIN_X.SAMPLER"),
    ),
    "test sampler": (
        ["DATALOADER.TEST.SAMPLER", "Sequential"],
        "DATALOADER.TEST.SAMPLER must be one of RandomSampler, SequentialSampler; got 'Sequential'. "
        "Did you mean \"SequentialSampler\"?" + fix("DATALOADER.TEST.SAMPLER"),
    ),
    "batch size": (
        ["DATALOADER.TRAIN_X.BATCH_SIZE", "0"],
        "DATALOADER.TRAIN_X.BATCH_SIZE must be an integer >= 1; got 0." + fix("DATALOADER.TRAIN_X.BATCH_SIZE"),
    ),
    "workers": (
        ["DATALOADER.NUM_WORKERS", "-1"],
        "DATALOADER.NUM_WORKERS must be an integer >= 0; got -1." + fix("DATALOADER.NUM_WORKERS"),
    ),
    "views per image": (
        ["DATALOADER.K_TRANSFORMS", "0"],
        "DATALOADER.K_TRANSFORMS must be an integer >= 1; got 0." + fix("DATALOADER.K_TRANSFORMS"),
    ),
    "base/new subsample": (
        ["DATASET.SUBSAMPLE_CLASSES", "bas"],
        "DATASET.SUBSAMPLE_CLASSES must be one of all, base, new; got 'bas'. Did you mean \"base\"?"
        + fix("DATASET.SUBSAMPLE_CLASSES"),
    ),
    "evaluator": (
        ["TEST.EVALUATOR", "Clasification"],
        "TEST.EVALUATOR must be one of Classification; got 'Clasification'. Did you mean \"Classification\"?"
        + fix("TEST.EVALUATOR"),
    ),
    "final model": (
        ["TEST.FINAL_MODEL", "best"],
        "TEST.FINAL_MODEL must be one of last_step, best_val; got 'best'. Did you mean \"best_val\"?"
        + fix("TEST.FINAL_MODEL"),
    ),
    "test split": (
        ["TEST.SPLIT", "vall"],
        "TEST.SPLIT must be one of test, val; got 'vall'. Did you mean \"val\"?" + fix("TEST.SPLIT"),
    ),
    "print frequency": (
        ["TRAIN.PRINT_FREQ", "0"], "TRAIN.PRINT_FREQ must be an integer >= 1; got 0." + fix("TRAIN.PRINT_FREQ"),
    ),
    "checkpoint frequency": (
        ["TRAIN.CHECKPOINT_FREQ", "-1"],
        "TRAIN.CHECKPOINT_FREQ must be an integer >= 0; got -1." + fix("TRAIN.CHECKPOINT_FREQ"),
    ),
    "resumable state frequency": (
        ["TRAIN.SAVE_RESUMABLE_EVERY", "-1"],
        "TRAIN.SAVE_RESUMABLE_EVERY must be an integer >= 0; got -1." + fix("TRAIN.SAVE_RESUMABLE_EVERY"),
    ),
    "validation frequency": (
        ["TRAIN.VAL_FREQ", "-5"], "TRAIN.VAL_FREQ must be an integer >= 0; got -5." + fix("TRAIN.VAL_FREQ"),
    ),
}


def bad_run_argv(tmp_path, override):
    """A toy run on DTD under an empty root: anything that reads the dataset fails with DatasetNotFoundError."""
    (tmp_path / "empty_root").mkdir(exist_ok=True)
    return [
        "--root", str(tmp_path / "empty_root"), "--output-dir", str(tmp_path / "out"), "--trainer", "ToyTrainer",
        "--dataset-config-file", DTD_YAML, "--import", "tests.helpers.toy_dataset", "--import", "datasets.dtd",
        *override,
    ]


@pytest.mark.parametrize("override, message", CASES.values(), ids=list(CASES))
def test_bad_value_fails_before_the_run_folder_and_the_dataset(tmp_path, override, message):
    with pytest.raises(ConfigError) as error:
        train.main(bad_run_argv(tmp_path, override), plugin_folders=())
    assert str(error.value) == message
    assert not (tmp_path / "out").exists(), "checked before the run folder is created"


def test_cli_prints_the_config_value_error_as_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py", *bad_run_argv(tmp_path, ["OPTIM.NAME", "sdg"])])
    with pytest.raises(SystemExit) as exit_info:
        train.cli()
    assert exit_info.value.code == "train.py: error: " + CASES["optimizer name"][1]


def test_global_batch_that_torchrun_cannot_split_fails_before_the_dataset(tmp_path, monkeypatch):
    """WORLD_SIZE is set by torchrun before train.py starts, so the split is checked with the config."""
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError) as error:
        train.main(bad_run_argv(tmp_path, ["DATALOADER.TRAIN_X.BATCH_SIZE", "32"]), plugin_folders=())
    assert str(error.value) == (
        "DATALOADER.TRAIN_X.BATCH_SIZE must be a multiple of the 3 torchrun processes (it is the global batch, "
        "split over them); got 32." + fix("DATALOADER.TRAIN_X.BATCH_SIZE")
    )
    assert not (tmp_path / "out").exists()


def cfg_with(key, value):
    return set_value(get_cfg_default(), key, value)


def early_message(cfg):
    with pytest.raises(ConfigError) as error:
        check_cfg_values(cfg)
    return str(error.value)


def sgd():
    return torch.optim.SGD([torch.zeros(1)], lr=0.1)


@pytest.mark.parametrize("override, build", [
    (("OPTIM.NAME", "sdg"), lambda cfg: build_optimizer(torch.nn.Linear(2, 2), cfg.OPTIM)),
    (("OPTIM.LR", -0.1), lambda cfg: build_optimizer(torch.nn.Linear(2, 2), cfg.OPTIM)),
    (("OPTIM.WARMUP_TYPE", "constnat"), lambda cfg: build_lr_scheduler(sgd(), cfg.OPTIM)),
    (("INPUT.TRANSFORMS", ("random_flp",)), lambda cfg: build_transform(cfg)),
    (("INPUT.SIZE", (224,)), lambda cfg: build_transform(cfg, is_train=False)),
    (("DATALOADER.TRAIN_X.SAMPLER", "RandomSamplr"), lambda cfg: build_sampler("RandomSamplr", data_source=[1])),
], ids=["optimizer", "lr", "warmup", "transform", "size", "sampler"])
def test_builders_repeat_the_early_message_for_library_callers(override, build):
    cfg = cfg_with(*override)
    with pytest.raises(ConfigError) as error:
        build(cfg)
    expected = early_message(cfg).replace("DATALOADER.TRAIN_X.SAMPLER", "DATALOADER.*.SAMPLER")
    assert str(error.value) == expected


def test_staged_lr_layer_names_are_checked_against_the_built_model():
    model = torch.nn.Sequential()
    model.add_module("backbone", torch.nn.Linear(2, 2))
    model.add_module("head", torch.nn.Linear(2, 2))
    cfg = cfg_with("OPTIM.STAGED_LR", True)
    set_value(cfg, "OPTIM.NEW_LAYERS", ("heads",))
    with pytest.raises(ConfigError) as error:
        build_optimizer(model, cfg.OPTIM)
    assert str(error.value) == (
        "OPTIM.NEW_LAYERS[0] must be one of backbone, head; got 'heads'. Did you mean \"head\"?" + fix("OPTIM.NEW_LAYERS")
    )


def test_every_shipped_config_passes_the_checks():
    train.import_plugins(train.PLUGIN_FOLDERS, [])
    paths = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))
    assert paths
    for path in paths:
        cfg = apply_cfg_extensions(get_cfg_default())
        merge_from_file(cfg, path)
        check_cfg_values(cfg)
