"""train.py end to end on the toy dataset and toy trainer (in-process via main(argv))."""
import json
import math
import os
import re
import sys

import pytest
import torch

import train
from dassl.config import ConfigError
from dassl.utils import is_run_done
from dassl.utils.registry import RegistryKeyError
from tests.helpers.toy_dataset import ToyTrainer
from tests.helpers.trainer_runs import TOY_DATA_YAML, killed_after, logged_epoch_numbers, write_toy_run_folder
from tests.helpers.trainer_runs import run_toy_training as run

TRAINER_YAML = TOY_DATA_YAML + """OPTIM:
  NAME: sgd
  LR: 0.002
  MAX_EPOCH: 4
  LR_SCHEDULER: cosine
  WARMUP_EPOCH: 1
  WARMUP_TYPE: constant
  WARMUP_CONS_LR: 0.001
TRAIN:
  PRINT_FREQ: 2
  CHECKPOINT_FREQ: 1
"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_run_folder(tmp_path_factory.mktemp("toy"), TRAINER_YAML)


@pytest.fixture(scope="module")
def reference_run(toy):
    out = toy / "reference"
    results = run(toy, out)
    return out, results


def test_training_writes_log_checkpoints_and_done_marker(reference_run):
    out, results = reference_run
    log = (out / "log.txt").read_text()
    assert "Finish training" in log and "Deploy the last-epoch model" in log
    assert re.search(r"=> result\n\* total: 12\n\* correct: \d+\n\* accuracy: \d+\.\d\d%\n\* error: \d+\.\d\d%\n\* macro_f1: ", log)
    assert re.search(r"epoch \[4/4\] batch \[4/4\] time \d\.\d{3} \(\d\.\d{3}\) data .* loss .* acc .* lr \d\.\d{4}e-0\d eta \d:\d\d:\d\d", log)
    assert re.search(r"Elapsed: \d+:\d\d:\d\d", log)
    assert sorted(os.listdir(out / "classifier")) == ["checkpoint"] + [f"model.pth.tar-{e}" for e in range(1, 5)], (
        "TRAIN.CHECKPOINT_FREQ 1 keeps every epoch")
    assert (out / "classifier" / "checkpoint").read_text() == "model.pth.tar-4\n"
    assert is_run_done(out)
    done = json.loads((out / "done.json").read_text())
    assert done["results"]["accuracy"] == pytest.approx(results["accuracy"])
    assert results["accuracy"] > 60.0, "the toy colours are learnable"
    checkpoint = torch.load(out / "classifier" / "model.pth.tar-4", weights_only=True)
    assert checkpoint["epoch"] == 4
    assert checkpoint["scheduler"]["successor"]["last_epoch"] == 3


def test_interrupted_run_resumes_to_identical_numbers(toy, reference_run):
    ref_out, ref_results = reference_run
    out = toy / "interrupted"
    with killed_after(ToyTrainer, "after_epoch", lambda trainer: trainer.epoch == 1), pytest.raises(KeyboardInterrupt):
        run(toy, out)
    assert not is_run_done(out)
    assert (out / "classifier" / "checkpoint").read_text() == "model.pth.tar-2\n"

    results = run(toy, out)

    log = (out / "log.txt").read_text()
    assert "=== resumed " in log and "Previous epoch: 2" in log
    assert "KeyboardInterrupt: simulated kill" in log
    assert logged_epoch_numbers(log) == logged_epoch_numbers((ref_out / "log.txt").read_text())
    assert results == pytest.approx(ref_results)
    final = torch.load(out / "classifier" / "model.pth.tar-4", weights_only=True)["state_dict"]
    reference = torch.load(ref_out / "classifier" / "model.pth.tar-4", weights_only=True)["state_dict"]
    for key in reference:
        assert torch.equal(final[key], reference[key])


def test_eval_only_reloads_the_trained_model(toy, reference_run):
    ref_out, ref_results = reference_run
    out = toy / "eval"
    results = run(toy, out, "--eval-only", "--model-dir", str(ref_out), "--load-epoch", "4")
    assert results == pytest.approx(ref_results)
    assert is_run_done(out)
    log = (out / "log.txt").read_text()
    assert "model.pth.tar-4 to classifier (epoch=4)" in log and "Finish training" not in log


def test_eval_only_without_load_epoch_names_the_missing_file(toy, reference_run):
    with pytest.raises(FileNotFoundError, match=r"model-best\.pth\.tar.*--load-epoch"):
        run(toy, toy / "eval_best", "--eval-only", "--model-dir", str(reference_run[0]))


def test_eval_only_without_model_dir_is_refused(toy):
    with pytest.raises(train.UsageError, match="--model-dir"):
        run(toy, toy / "eval_nodir", "--eval-only")


def test_command_line_errors_are_reported_before_training(toy, tmp_path):
    with pytest.raises(train.UsageError, match="does-not-exist"):
        run(toy, tmp_path / "a", "--root", str(tmp_path / "does-not-exist"))
    with pytest.raises(RegistryKeyError, match='Did you mean "ToyTrainer"'):
        run(toy, tmp_path / "b", "--trainer", "ToyTrainr")
    with pytest.raises(ConfigError, match="missing.yaml"):
        run(toy, tmp_path / "c", "--config-file", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r'"OPTIM.MAX_EPOCHS".*command line.*"OPTIM.MAX_EPOCH"'):
        run(toy, tmp_path / "d", "OPTIM.MAX_EPOCHS", "3")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_trainer_and_dataset_folders_are_imported(tmp_path):
    plugins = tmp_path / "plugin_trainers_x"
    plugins.mkdir()
    (plugins / "__init__.py").write_text("")
    (plugins / "good.py").write_text("LOADED = True\n")
    (plugins / "_private.py").write_text("raise RuntimeError('must be skipped')\n")
    train.import_plugins([str(plugins)], [])
    assert sys.modules["plugin_trainers_x.good"].LOADED
    (plugins / "broken.py").write_text("import does_not_exist_anywhere\n")
    with pytest.raises(ImportError, match=r"plugin_trainers_x\.broken.*does_not_exist_anywhere"):
        train.import_plugins([str(plugins)], [])


def test_best_val_saves_and_deploys_the_best_model(toy):
    out = toy / "best_val"
    run(toy, out, "TEST.FINAL_MODEL", "best_val", "OPTIM.MAX_EPOCH", "2", "TRAIN.CHECKPOINT_FREQ", "0")
    log = (out / "log.txt").read_text()
    assert "Evaluate on the *val* set" in log and "Deploy the model with the best val performance" in log
    assert sorted(os.listdir(out / "classifier")) == ["checkpoint", "model-best.pth.tar", "model.pth.tar-1", "model.pth.tar-2"]
    assert "model-best.pth.tar to classifier" in log


def test_iteration_mode_runs_max_iter_steps_with_val_and_checkpoints(toy):
    out = toy / "iterations"
    run(
        toy, out, "OPTIM.MAX_ITER", "10", "OPTIM.WARMUP_ITER", "2", "OPTIM.WARMUP_TYPE", "linear", "OPTIM.LR", "0.01",
        "TRAIN.VAL_FREQ", "5", "TRAIN.CHECKPOINT_FREQ", "5", "TEST.FINAL_MODEL", "best_val",
    )
    log = (out / "log.txt").read_text()
    assert re.search(r"iter \[10/10\] time .* lr \d\.\d{4}e-0\d eta", log) and "epoch [" not in log
    assert log.count("Evaluate on the *val* set") == 2 and "Finish training" in log
    assert {"model.pth.tar-5", "model.pth.tar-10", "model-best.pth.tar"} <= set(os.listdir(out / "classifier"))
    lrs = [float(x) for x in re.findall(r"^iter .* lr (\S+) eta", log, flags=re.M)]
    assert lrs[0] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 0 / 10)))
    # The toy trainer calls update_lr() at its "last batch" as CoOp-style trainers do; in iteration
    # mode that per-epoch call must not add a step, so the last line shows step 10's LR.
    assert lrs[-1] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * (10 - 2) / 10)), rel=1e-4)
