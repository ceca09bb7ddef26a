"""TGP-T through train.py on CPU: base training in iteration mode, then evaluation on the new classes."""
import os

import pytest
import torch

import train
from dassl.utils import is_run_done
from tests.helpers.trainer_runs import CLASS_COLOURS, base2new_argv, write_colour_images, write_tiny_clip_checkpoint

CONFIG = "TGPT/vit_b16_caltech101"
FAST = [
    "OPTIM.MAX_ITER", "8",
    "OPTIM.WARMUP_ITER", "2",
    "OPTIM.LR", "0.001",
    "TRAIN.VAL_FREQ", "4",
    "TRAIN.CHECKPOINT_FREQ", "4",
    "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
    "DATASET.NUM_SHOTS", "2",
    "TRAINER.TGPT.N_Q_CONTENT", "16",
]


def write_captions(dataset_dir, skip=()):
    """One description per image; the first class's keys carry the authors' "<dataset folder>/" prefix."""
    lines = []
    for index, name in enumerate(CLASS_COLOURS):
        for image in sorted(os.listdir(os.path.join(dataset_dir, name))):
            key = f"{name}/{image}"
            if key in skip:
                continue
            prefix = f"{os.path.basename(dataset_dir)}/" if index == 0 else ""
            lines.append(f"{prefix}{key}\tA small square of flat {name.replace('_', ' ')} colour with some noise.")
    with open(os.path.join(dataset_dir, "captions.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")



@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_colour_images(str(root), per_class=6)
    write_captions(str(root / "colours"))
    clip_path = write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")
    return root, clip_path


@pytest.fixture(scope="module")
def base_run(assets, tmp_path_factory):
    root, clip_path = assets
    out = tmp_path_factory.mktemp("train_base")
    results = train.main(base2new_argv("TGPT", CONFIG, root, clip_path, out, "base", FAST), plugin_folders=train.PLUGIN_FOLDERS)
    return out, results


def test_base_training_runs_in_iteration_mode_and_selects_on_val(base_run):
    out, results = base_run
    log = (out / "log.txt").read_text()
    assert "iter [8/8]" in log and "loss_category" in log and "loss_content" in log
    assert "* wiseft_accuracy: " in log and set(results) >= {"accuracy", "wiseft_accuracy"}
    assert is_run_done(out)
    folder = out / "prompt_learner"
    assert {"model.pth.tar-4", "model.pth.tar-8", "model-best.pth.tar"} <= set(os.listdir(folder))
    checkpoint = torch.load(folder / "model.pth.tar-8", weights_only=True)
    assert checkpoint["state_dict"]["_extra_state"]["classnames"] == ["blue", "dark grey", "green"]
    assert checkpoint["state_dict"]["head"].shape == (3, 64)
    assert "zero_shot_head" not in checkpoint["state_dict"]


def test_new_classes_use_zero_shot_rows_and_the_best_base_model(assets, base_run, tmp_path):
    root, clip_path = assets
    model_dir, _ = base_run
    argv = base2new_argv("TGPT", CONFIG, root, clip_path, tmp_path, "new", FAST, model_dir=model_dir)
    results = train.main(argv, plugin_folders=train.PLUGIN_FOLDERS)
    log = (tmp_path / "log.txt").read_text()
    assert "model-best.pth.tar" in log and "learned head rows for 0 of 3 classes" in log
    assert results["wiseft_accuracy"] == pytest.approx(results["accuracy"]), "W = W_zs on new classes"


def test_missing_captions_stop_the_run_before_training(assets, tmp_path):
    _, clip_path = assets
    write_colour_images(str(tmp_path / "data"), per_class=6)
    out = tmp_path / "out"
    argv = base2new_argv("TGPT", CONFIG, tmp_path / "data", clip_path, out, "base", FAST)
    with pytest.raises(FileNotFoundError, match="TRAINER.TGPT.CONTENT_LOSS False"):
        train.main(argv, plugin_folders=train.PLUGIN_FOLDERS)
    assert not (out / "prompt_learner").exists()


def test_training_image_without_description_is_named_before_training(assets, tmp_path):
    _, clip_path = assets
    root = tmp_path / "data"
    write_colour_images(str(root), per_class=6)
    write_captions(str(root / "colours"), skip={f"{name}/{i}.png" for name in ("blue", "green") for i in range(6)})
    argv = base2new_argv("TGPT", CONFIG, root, clip_path, tmp_path / "out", "base", FAST)
    with pytest.raises(LookupError, match=r"have no description in .*captions.txt, first '(blue|green)/\d\.png'"):
        train.main(argv, plugin_folders=train.PLUGIN_FOLDERS)


def test_bf16_without_content_loss_trains_without_captions(assets, tmp_path):
    _, clip_path = assets
    write_colour_images(str(tmp_path / "data"), per_class=6)
    opts = FAST + ["TRAINER.TGPT.CONTENT_LOSS", "False", "TRAINER.TGPT.PREC", "bf16", "OPTIM.MAX_ITER", "2",
                   "TEST.FINAL_MODEL", "last_step"]
    argv = base2new_argv("TGPT", CONFIG, tmp_path / "data", clip_path, tmp_path / "out", "base", opts)
    results = train.main(argv, plugin_folders=train.PLUGIN_FOLDERS)
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "loss_category" in log and "loss_content" not in log
    assert 0.0 <= results["accuracy"] <= 100.0
