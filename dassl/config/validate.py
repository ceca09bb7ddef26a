"""Check every engine config value at config time, before the dataset is read or CLIP is loaded.

train.py calls `check_cfg_values` right after merging, so a typo costs seconds,
not a dataset scan and a backbone load. The builders that read these values
later (optimizer, scheduler, transforms, samplers) run their own part of the
same checks, with the same messages, for callers that build them directly.
Not imported by `dassl.config` itself: it depends on the engine's modules,
which import `dassl.config`.
"""
from ..data.datasets.base_new import SUBSAMPLE_CHOICES
from ..data.samplers import AVAILABLE_SAMPLERS
from ..data.transforms import check_input_cfg
from ..engine.distributed import check_global_batch, requested_world_size
from ..evaluation import EVALUATOR_REGISTRY
from ..optim import check_optimizer_cfg, check_scheduler_cfg
from .checks import check_choice, check_int_at_least, invalid_value, is_int

FINAL_MODELS = ("last_step", "best_val")
TEST_SPLITS = ("test", "val")
LOADERS = ("TRAIN_X", "TRAIN_U", "TEST")


def _check_dataloader(loader_cfg):
    check_int_at_least("DATALOADER.NUM_WORKERS", loader_cfg.NUM_WORKERS, 0)
    check_int_at_least("DATALOADER.K_TRANSFORMS", loader_cfg.K_TRANSFORMS, 1)
    for name in LOADERS:
        check_choice(f"DATALOADER.{name}.SAMPLER", loader_cfg[name].SAMPLER, AVAILABLE_SAMPLERS)
        check_int_at_least(f"DATALOADER.{name}.BATCH_SIZE", loader_cfg[name].BATCH_SIZE, 1)


def _check_train_loop(cfg):
    """Keys the trainer loop reads; a bad value there would otherwise fail or be ignored mid-run."""
    check_int_at_least("OPTIM.MAX_EPOCH", cfg.OPTIM.MAX_EPOCH, 0)
    check_int_at_least("TRAIN.PRINT_FREQ", cfg.TRAIN.PRINT_FREQ, 1)
    check_int_at_least("TRAIN.CHECKPOINT_FREQ", cfg.TRAIN.CHECKPOINT_FREQ, 0)
    check_int_at_least("TRAIN.SAVE_RESUMABLE_EVERY", cfg.TRAIN.SAVE_RESUMABLE_EVERY, 0)
    check_int_at_least("TRAIN.VAL_FREQ", cfg.TRAIN.VAL_FREQ, 0)
    check_choice("TEST.FINAL_MODEL", cfg.TEST.FINAL_MODEL, FINAL_MODELS)
    check_choice("TEST.SPLIT", cfg.TEST.SPLIT, TEST_SPLITS)
    check_choice("TEST.EVALUATOR", cfg.TEST.EVALUATOR, sorted(EVALUATOR_REGISTRY.registered_names()))


def _check_num_shots(num_shots):
    """-1 (or 0) keeps every training image, as upstream; below that is a typo, not 'all'."""
    if not is_int(num_shots) or num_shots < -1:
        raise invalid_value("DATASET.NUM_SHOTS", num_shots, "an integer >= 1, or -1 for all training images")


def check_training_length(cfg):
    """A training run trains: zero epochs (outside iteration mode) would mark an untrained prompt as finished."""
    if cfg.OPTIM.MAX_EPOCH == 0 and cfg.OPTIM.MAX_ITER == 0:
        raise invalid_value(
            "OPTIM.MAX_EPOCH", 0, "at least 1 to train (or OPTIM.MAX_ITER > 0)",
            " To evaluate a trained run without training, pass --eval-only --model-dir DIR instead.",
        )


def check_cfg_values(cfg):
    """ConfigError (key, bad value, valid values, fix) on the first engine value that cannot run."""
    check_input_cfg(cfg)
    _check_num_shots(cfg.DATASET.NUM_SHOTS)
    check_choice("DATASET.SUBSAMPLE_CLASSES", cfg.DATASET.SUBSAMPLE_CLASSES, SUBSAMPLE_CHOICES)
    _check_dataloader(cfg.DATALOADER)
    check_global_batch(cfg.DATALOADER.TRAIN_X.BATCH_SIZE, requested_world_size())
    check_optimizer_cfg(cfg.OPTIM)
    check_scheduler_cfg(cfg.OPTIM)
    _check_train_loop(cfg)
