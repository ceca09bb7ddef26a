"""Issue #18, item 1 and 2: bad input found early and told in one line, not accepted, not a traceback.

Config errors are checked before the dataset is read (its loader is replaced
by one that fails the test); the rest run `train.main` / `train.cli` on the
tiny CLIP and the colour folder of tests/test_errors.py.
"""
import ast
import glob
import json
import os
import random
import shutil

import pytest
import torch

import train
from dassl.config import ConfigError
from dassl.engine.simple_trainer import SimpleTrainer
from dassl.utils import is_run_done, read_done_marker
from dassl.data.datasets.dataset_errors import DatasetNotFoundError
from dassl.data.datasets.split_paths import SplitEntryOutsideError
from dassl.utils import load_checkpoint
from dassl.utils.errors import ClassNameTooLongError, InputError, TrainingDivergedError, UnreadableCheckpointError
from tests.helpers.trainer_runs import REPO
from tests.test_errors import clip_assets, coop_argv, dtd_root, files, run_cli, run_coop, run_toy  # noqa: F401
from trainers.common.base_trainer import PromptCLIPTrainer
from trainers.tgpt.captions import CaptionFileError, find_caption_file, read_caption_file


@pytest.fixture
def no_dataset(monkeypatch):
    def fail(self):
        raise AssertionError("the dataset was read before the config was checked")

    monkeypatch.setattr(SimpleTrainer, "build_data_loader", fail)


def fix(key):
    return f" Set {key} in the config file or on the command line."


@pytest.mark.parametrize("opts, message", [
    (["TRAINER.COOP.CTX_INIT", "a xylophonist"],
     "TRAINER.COOP.CTX_INIT 'a xylophonist' has 2 words but 5 BPE tokens; use words that are single CLIP tokens "
     "(e.g. 'a photo of a') or a random init (TRAINER.COOP.CTX_INIT '')"),
    (["TRAINER.COOP.N_CTX", "-3"],
     "TRAINER.COOP.N_CTX must be an integer >= 1 for a random context (CTX_INIT ''); got -3." + fix("TRAINER.COOP.N_CTX")),
    (["DATASET.NUM_SHOTS", "-5"],
     "DATASET.NUM_SHOTS must be an integer >= 1, or -1 for all training images; got -5." + fix("DATASET.NUM_SHOTS")),
    (["OPTIM.MAX_EPOCH", "0"],
     "OPTIM.MAX_EPOCH must be at least 1 to train (or OPTIM.MAX_ITER > 0); got 0. To evaluate a trained run without "
     "training, pass --eval-only --model-dir DIR instead." + fix("OPTIM.MAX_EPOCH")),
], ids=["multi-token ctx init", "negative n_ctx", "negative shots", "zero epochs"])
def test_config_errors_come_before_the_dataset(clip_assets, tmp_path, no_dataset, opts, message):
    with pytest.raises(ConfigError) as error:
        run_coop(clip_assets, tmp_path / "out", opts=opts)
    assert str(error.value) == message


def test_zero_epochs_are_fine_for_evaluation(clip_assets, tmp_path):
    out = tmp_path / "zs"
    argv = coop_argv(clip_assets, out, opts=["OPTIM.MAX_EPOCH", "0"])
    argv[argv.index("CoOp")] = "ZeroshotCLIP"
    train.main(["--import", "trainers.zsclip", "--eval-only", *argv], plugin_folders=())
    assert is_run_done(out)


def test_a_trainer_with_nothing_to_train_evaluates(clip_assets, tmp_path, capsys):
    out = tmp_path / "zs"
    argv = coop_argv(clip_assets, out)
    argv[argv.index("CoOp")] = "ZeroshotCLIP"
    results = train.main(["--import", "trainers.zsclip", *argv], plugin_folders=())
    assert "Note: ZeroshotCLIP has nothing to train; evaluating it (as with --eval-only)" in capsys.readouterr().out
    assert results["accuracy"] == read_done_marker(out)["results"]["accuracy"]


def test_a_class_name_too_long_for_clip_is_named(clip_assets, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(os.path.join(clip_assets[0], "colours"), root / "colours", ignore=shutil.ignore_patterns("split_*"))
    long_name = "qz" * 40
    os.rename(root / "colours" / "violet", root / "colours" / long_name)
    with pytest.raises(ClassNameTooLongError) as error:
        run_coop((str(root), clip_assets[1]), tmp_path / "out", opts=["DATASET.SUBSAMPLE_CLASSES", "all"])
    assert str(error.value) == (
        f"Class name {long_name!r} is 80 CLIP tokens, and its prompt 85 (with the start and end tokens); CLIP reads "
        "at most 77. Shorten that class name where the dataset names it (own-folder dataset: a line "
        "\"<folder> <short name>\" in its classnames.txt; other datasets: the class name in its split file) and run again"
    )


def test_a_nan_loss_is_one_line_with_epoch_batch_and_hint(clip_assets, tmp_path, monkeypatch):
    def nan_loss(self, logits, labels, loss_terms):
        return logits.sum() * float("nan")

    monkeypatch.setattr(PromptCLIPTrainer, "compute_loss", nan_loss)
    line = run_cli(monkeypatch, coop_argv(clip_assets, tmp_path / "out", opts=["OPTIM.MAX_EPOCH", "1"]))
    assert line.startswith("train.py: error: Loss is nan at epoch [1/1] batch [1/")
    assert line.endswith("(TRAINER.COOP.PREC=fp32); try a lower OPTIM.LR, or TRAINER.COOP.PREC fp32 if you use amp")


def test_the_engine_loss_check_is_an_input_error():
    trainer = SimpleTrainer.__new__(SimpleTrainer)
    with pytest.raises(TrainingDivergedError, match=r"^Loss is infinite or NaN at epoch 1, batch 1\. "):
        trainer.detect_anomaly(torch.tensor(float("inf")))
    assert issubclass(TrainingDivergedError, (InputError, FloatingPointError))


@pytest.mark.parametrize("entry", ["/etc/hostname", "../../outside.jpg"])
def test_a_split_entry_outside_the_dataset_is_refused(files, dtd_root, tmp_path, entry):
    split = dtd_root / "dtd" / "split_zhou_DescribableTextures.json"
    content = json.loads(split.read_text())
    content["test"][2][0] = entry
    split.write_text(json.dumps(content))
    with pytest.raises(SplitEntryOutsideError) as error:
        run_toy(files, dtd_root, tmp_path / "out", dataset_yaml=os.path.join(REPO, "configs/datasets/dtd.yaml"))
    image_dir = dtd_root / "dtd" / "images"
    assert str(error.value) == (
        f"{split}: entry test[2] names {os.path.join(image_dir, entry)}, outside the image folder {image_dir}; a split "
        "file holds paths relative to that folder: fix the entry, or replace the file with an intact copy"
    )


def test_a_malformed_or_binary_captions_file_is_named(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_bytes(b"a.jpg\tfine\nb.jpg has no tab\n")
    with pytest.raises(CaptionFileError, match=r"captions.txt, line 2: expected '<image path>\\t<description>"):
        read_caption_file(str(path))
    path.write_bytes(b"a.jpg\t\xff\xfe broken\n")
    with pytest.raises(CaptionFileError, match=r"captions.txt is not UTF-8 text \(.*\); save it as UTF-8"):
        read_caption_file(str(path))
    assert issubclass(CaptionFileError, InputError)


def test_a_missing_captions_file_is_an_input_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"^TGP-T's content loss needs one description per training image, "
                                                   rf"but there is no {tmp_path}/captions.txt or "):
        find_caption_file(str(tmp_path))


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_as_a_checkpoint_are_unreadable(tmp_path, seed):
    path = tmp_path / "model.pth.tar-1"
    rng = random.Random(seed)
    path.write_bytes(rng.randbytes(rng.randint(1, 3000)))
    with pytest.raises(UnreadableCheckpointError, match=rf"^{path}"):
        load_checkpoint(str(path))


def test_a_trainer_config_error_is_one_line_before_the_dataset(clip_assets, tmp_path, monkeypatch, no_dataset):
    argv = coop_argv(clip_assets, tmp_path / "out", opts=["TRAINER.COOP.KG_SCHEDULE", "cosin"])
    argv[argv.index("CoOp")] = "KgCoOp"
    line = run_cli(monkeypatch, ["--import", "trainers.kgcoop", *argv])
    assert line.startswith("train.py: error: TRAINER.COOP.KG_SCHEDULE must be one of ")


# API guards: raised only when code calls these helpers wrongly; no config value or file reaches them.
API_GUARDS = {
    ("frozen_text.py", "_as_template_tuple"), ("text_encoding.py", "encode_prompt_embeddings"),
    ("text_encoding.py", "text_chunk_size"), ("text_encoding.py", "sequence_working_bytes"),
    ("visual_prompts.py", "per_block"), ("textrefiner.py", "forward"), ("templates.py", "get_template"),
}
PLAIN_ERRORS = {"ValueError", "KeyError", "FileNotFoundError", "LookupError", "FloatingPointError"}


def test_trainers_raise_input_errors_not_plain_ones():
    """A plain ValueError/KeyError reaches a train.py user as a traceback; trainers raise InputErrors instead."""
    plain = []
    for path in glob.glob(os.path.join(REPO, "trainers", "**", "*.py"), recursive=True):
        tree = ast.parse(open(path, encoding="utf-8").read())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef) or (os.path.basename(path), function.name) in API_GUARDS:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    if getattr(node.exc.func, "id", "") in PLAIN_ERRORS:
                        plain.append(f"{os.path.relpath(path, REPO)}:{node.lineno}")
    assert plain == []


def test_an_input_size_other_than_the_backbones_names_the_checkpoint_file(clip_assets, tmp_path):  # noqa: F811
    """A backbone given by its file alone (no NAME) is named by its path in the fix line."""
    _, clip_path = clip_assets
    with pytest.raises(ConfigError) as error:
        run_coop(clip_assets, tmp_path / "out", opts=["MODEL.BACKBONE.NAME", "", "INPUT.SIZE", "(64, 64)"])
    assert str(error.value) == (
        f"INPUT.SIZE is (64, 64) but {clip_path} expects 32x32 images; set INPUT.SIZE (32, 32)"
    )
