"""Tests of scripts/<method>/*.sh: one real base-to-new run through train.py, and the
argument / path / skip logic of every script with a recording stand-in for the interpreter."""
import json
import os
import subprocess

import pytest

from tests.helpers.trainer_runs import RESOLUTION, write_colour_images, write_tiny_clip_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")

RECORDING_PYTHON = """#!/usr/bin/env bash
# Records its arguments (one per line) and fakes a finished run with a checkpoint at epoch 7.
n=$(ls "$CALLS_DIR" | wc -l)
printf '%s\\n' "$@" > "$CALLS_DIR/$(printf '%03d' "$n").txt"
while [ "$#" -gt 0 ]; do
    if [ "$1" = "--output-dir" ]; then out="$2"; fi
    shift
done
mkdir -p "$out/prompt_learner"
echo "model.pth.tar-7" > "$out/prompt_learner/checkpoint"
echo '{}' > "$out/done.json"
"""


def run_script(script, *args, env, cwd):
    return subprocess.run(
        ["bash", os.path.join(SCRIPTS, script), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def recorder(tmp_path):
    """Environment whose PYTHON records train.py calls; returns (env, calls(), output root)."""
    data, calls_dir, out = tmp_path / "data", tmp_path / "calls", tmp_path / "out"
    for folder in (data, calls_dir):
        folder.mkdir()
    python = tmp_path / "python"
    python.write_text(RECORDING_PYTHON)
    python.chmod(0o755)
    env = {
        **os.environ,
        "DATA": str(data),
        "OUTPUT": str(out),
        "PYTHON": str(python),
        "CALLS_DIR": str(calls_dir),
        "EXTRA_OPTS": 'DATASET.FOLDER colours TRAINER.COOP.CTX_INIT "a photo of a"',
    }
    for inherited in ("SHOTS", "TRAINER_DIR", "SEEDS", "XD_SOURCE"):
        env.pop(inherited, None)

    def calls():
        return [(calls_dir / name).read_text().splitlines() for name in sorted(os.listdir(calls_dir))]

    return env, calls, out


def flag(args, name):
    return args[args.index(name) + 1]


@pytest.mark.parametrize(
    "method,trainer,default_cfg",
    [("coop", "CoOp", "vit_b16_ctxv1"), ("cocoop", "CoCoOp", "vit_b16_c4_ep10_batch1_ctxv1"), ("kgcoop", "KgCoOp", "vit_b16_ep100_ctxv1")],
)
def test_base2new_scripts_build_upstream_tree_and_find_the_epoch(recorder, tmp_path, method, trainer, default_cfg):
    env, calls, out = recorder
    assert run_script(f"{method}/base2new_train.sh", "eurosat", "2", env=env, cwd=tmp_path).returncode == 0
    assert run_script(f"{method}/base2new_test.sh", "eurosat", "2", env=env, cwd=tmp_path).returncode == 0
    train, test = calls()
    common = f"eurosat/shots_16/{trainer}/{default_cfg}/seed2"
    assert train[0] == "train.py" and flag(train, "--trainer") == trainer
    assert flag(train, "--config-file") == f"configs/trainers/{trainer}/{default_cfg}.yaml"
    assert flag(train, "--dataset-config-file") == "configs/datasets/eurosat.yaml"
    assert flag(train, "--output-dir") == str(out / "base2new/train_base" / common)
    assert train[-8:] == [
        "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base",
        "DATASET.FOLDER", "colours", "TRAINER.COOP.CTX_INIT", "a photo of a",
    ]
    assert flag(test, "--model-dir") == str(out / "base2new/train_base" / common)
    assert flag(test, "--load-epoch") == "7" and "--eval-only" in test
    assert flag(test, "--output-dir") == str(out / "base2new/test_new" / common)
    assert test[test.index("DATASET.SUBSAMPLE_CLASSES") + 1] == "new"


def test_trainer_dir_names_the_output_folder_of_plug_in_rows(recorder, tmp_path):
    env, calls, out = recorder
    env = {**env, "TRAINER_DIR": "CoCoOp+TextRefiner", "EXTRA_OPTS": "TRAINER.TEXTREFINER.ENABLED True"}
    run_script("cocoop/base2new_train.sh", "dtd", "1", env=env, cwd=tmp_path)
    run_script("cocoop/base2new_test.sh", "dtd", "1", env=env, cwd=tmp_path)
    train, test = calls()
    common = "dtd/shots_16/CoCoOp+TextRefiner/vit_b16_c4_ep10_batch1_ctxv1/seed1"
    assert flag(train, "--trainer") == "CoCoOp" and train[-2:] == ["TRAINER.TEXTREFINER.ENABLED", "True"]
    assert flag(train, "--output-dir") == str(out / "base2new/train_base" / common)
    assert flag(test, "--model-dir") == str(out / "base2new/train_base" / common)


def test_finished_runs_still_go_through_train_py_which_decides_reuse(recorder, tmp_path):
    env, calls, out = recorder
    run_script("coop/base2new_train.sh", "eurosat", "1", "vit_b16_ep50", env=env, cwd=tmp_path)
    again = run_script("coop/base2new_train.sh", "eurosat", "1", "vit_b16_ep50", env=env, cwd=tmp_path)
    assert "Skip" not in again.stdout, "done.json alone does not decide: train.py compares run.json"
    assert len(calls()) == 2 and calls()[0] == calls()[1]


def test_test_script_refuses_an_unfinished_training_run(recorder, tmp_path):
    env, calls, _ = recorder
    result = run_script("kgcoop/base2new_test.sh", "eurosat", "1", env=env, cwd=tmp_path)
    assert result.returncode != 0 and "not finished" in result.stderr and calls() == []


def test_clear_errors_for_missing_data_unknown_dataset_and_usage(recorder, tmp_path):
    env, calls, _ = recorder
    no_data = {key: value for key, value in env.items() if key != "DATA"}
    result = run_script("cocoop/base2new_train.sh", "eurosat", "1", env=no_data, cwd=tmp_path)
    assert result.returncode == 2 and "DATA is not set" in result.stderr
    result = run_script("cocoop/base2new_train.sh", "no_such_set", "1", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "unknown dataset 'no_such_set'" in result.stderr
    result = run_script("cocoop/base2new_train.sh", "eurosat", "1", "no_such_cfg", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "unknown config 'no_such_cfg'" in result.stderr
    result = run_script("cocoop/base2new_train.sh", "eurosat", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr
    assert calls() == []


def test_cross_dataset_scripts_train_on_the_source_and_evaluate_elsewhere(recorder, tmp_path):
    env, calls, out = recorder
    env = {**env, "SHOTS": "4"}
    run_script("cocoop/xd_train.sh", "3", env=env, cwd=tmp_path)
    run_script("cocoop/xd_test.sh", "imagenet_a", "3", env=env, cwd=tmp_path)
    train, test = calls()
    model_dir = str(out / "imagenet/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_4shots/seed3")
    assert flag(train, "--output-dir") == model_dir and flag(train, "--dataset-config-file").endswith("imagenet.yaml")
    assert "DATASET.SUBSAMPLE_CLASSES" not in train and flag(train, "DATASET.NUM_SHOTS") == "4"
    assert flag(test, "--model-dir") == model_dir and flag(test, "--load-epoch") == "7"
    assert flag(test, "--output-dir") == str(out / "evaluation/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_4shots/imagenet_a/seed3")


def test_coop_main_keeps_upstream_interface_and_loops_seeds(recorder, tmp_path):
    env, calls, out = recorder
    env = {**env, "SEEDS": "1 2"}
    run_script("coop/main.sh", "dtd", "rn50_ep50", "middle", "8", "1", "True", env=env, cwd=tmp_path)
    first, second = calls()
    assert flag(first, "--output-dir") == str(out / "dtd/CoOp/rn50_ep50_1shots/nctx8_cscTrue_ctpmiddle/seed1")
    assert flag(second, "--seed") == "2"
    for key, value in [("TRAINER.COOP.N_CTX", "8"), ("TRAINER.COOP.CSC", "True"),
                       ("TRAINER.COOP.CLASS_TOKEN_POSITION", "middle"), ("DATASET.NUM_SHOTS", "1")]:
        assert flag(first, key) == value


def test_zero_shot_scripts_evaluate_without_a_model(recorder, tmp_path):
    env, calls, out = recorder
    run_script("zsclip/zeroshot.sh", "oxford_pets", "rn50", env=env, cwd=tmp_path)
    run_script("zsclip/base2new_train.sh", "oxford_pets", "1", env=env, cwd=tmp_path)
    run_script("zsclip/base2new_test.sh", "oxford_pets", "1", env=env, cwd=tmp_path)
    plain, base, new = calls()
    assert flag(plain, "--output-dir") == str(out / "ZeroshotCLIP/rn50/oxford_pets")
    assert flag(plain, "--config-file") == "configs/trainers/CoOp/rn50.yaml"
    for args, sub, tree in [(base, "base", "train_base"), (new, "new", "test_new")]:
        assert flag(args, "--trainer") == "ZeroshotCLIP" and "--eval-only" in args and "--model-dir" not in args
        assert flag(args, "DATASET.SUBSAMPLE_CLASSES") == sub
        assert flag(args, "--output-dir") == str(out / f"base2new/{tree}/oxford_pets/shots_16/ZeroshotCLIP/vit_b16/seed1")


def test_real_base2new_run_through_train_py_from_another_directory(tmp_path):
    """Train CoOp on the base classes, then evaluate on the new ones, with the real train.py."""
    data = tmp_path / "data"
    write_colour_images(str(data))
    clip_path = write_tiny_clip_checkpoint(tmp_path / "tiny.pt", embed_dim=128)
    env = {
        **os.environ,
        "DATA": str(data),
        "OUTPUT": "runs",
        "SHOTS": "2",
        "EXTRA_OPTS": (
            f"MODEL.BACKBONE.PATH {clip_path} INPUT.SIZE '({RESOLUTION}, {RESOLUTION})' DATASET.FOLDER colours "
            "DATALOADER.NUM_WORKERS 0 USE_CUDA False OPTIM.MAX_EPOCH 2 DATALOADER.TRAIN_X.BATCH_SIZE 4 "
            "DATALOADER.TEST.BATCH_SIZE 32 TRAINER.COOP.PREC fp32"
        ),
    }
    for script in ("coop/base2new_train.sh", "coop/base2new_test.sh"):
        result = run_script(script, "image_folder", "1", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    common = "image_folder/shots_2/CoOp/vit_b16_ctxv1/seed1"
    train_dir, test_dir = tmp_path / "runs/base2new/train_base" / common, tmp_path / "runs/base2new/test_new" / common
    assert (train_dir / "prompt_learner/model.pth.tar-2").is_file()
    assert (train_dir / "prompt_learner/checkpoint").read_text().strip() == "model.pth.tar-2"
    assert json.loads((test_dir / "done.json").read_text())
    log = (test_dir / "log.txt").read_text()
    assert f"Loading weights to prompt_learner from {train_dir}/prompt_learner/model.pth.tar-2 (epoch = 2)" in log
    assert "* accuracy:" in log
