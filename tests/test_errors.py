"""Every bad input of docs/errors.md ends in its one clear message, through train.py.

Rows run `train.main(argv)` in-process (cheap configs: the toy trainer, or
CoOp on a tiny CLIP); `train.cli` and one real `python train.py` subprocess
show that the user sees one line, not a traceback.
"""
import os
import re
import subprocess
import sys

import pytest
import torch

import clip.loader
import train
from dassl.config import ConfigError
from dassl.engine.simple_trainer import SimpleTrainer
from dassl.data.datasets.dataset_errors import DatasetNotFoundError, MissingImagesError, SplitFileError
from dassl.utils import is_run_done
from dassl.utils.errors import (
    BackboneLoadError,
    CheckpointMismatchError,
    CudaUnavailableError,
    DiskFullError,
    MissingCheckpointError,
    UnreadableCheckpointError,
    UnreadableImageError,
)
from dassl.utils.registry import RegistryKeyError
from tests.helpers.disk_full import fail_writes
from tests.helpers.fake_benchmarks import make_dtd
from tests.helpers.toy_dataset import write_toy_images
from tests.helpers.trainer_runs import REPO, base2new_argv, write_colour_images, write_tiny_clip_checkpoint

TOY_TRAINER_YAML = """
INPUT:
  SIZE: (8, 8)
  TRANSFORMS: ["normalize"]
DATALOADER:
  NUM_WORKERS: 0
  TRAIN_X:
    BATCH_SIZE: 6
  TEST:
    BATCH_SIZE: 12
OPTIM:
  NAME: sgd
  LR: 0.01
  MAX_EPOCH: 1
TRAIN:
  PRINT_FREQ: 100
  CHECKPOINT_FREQ: 1
"""
COOP_CONFIG = "CoOp/vit_b16_ep50"
COOP_OPTS = ["TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "2", "TRAINER.COOP.CSC", "True"]



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The toy trainer's yaml, the dataset yamls, an empty data root."""
    base = tmp_path_factory.mktemp("errors")
    (base / "toy_trainer.yaml").write_text(TOY_TRAINER_YAML)
    (base / "toy_dataset.yaml").write_text("DATASET:\n  NAME: ToyDataset\n")
    (base / "empty_root").mkdir()
    return base


def toy_argv(files, root, out, *extra, dataset_yaml=None):
    return [
        "--root", str(root), "--output-dir", str(out), "--seed", "1", "--trainer", "ToyTrainer",
        "--dataset-config-file", str(dataset_yaml or files / "toy_dataset.yaml"),
        "--config-file", str(files / "toy_trainer.yaml"),
        "--import", "tests.helpers.toy_dataset", "--import", "datasets.dtd", *extra,
    ]


def run_toy(files, root, out, *extra, dataset_yaml=None):
    return train.main(toy_argv(files, root, out, *extra, dataset_yaml=dataset_yaml), plugin_folders=())


def run_cli(monkeypatch, argv):
    """`train.cli()` with `argv`; returns what it exits with (the line the user sees)."""
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        train.cli()
    return exit_info.value.code


@pytest.fixture(scope="module")
def toy_run(files, tmp_path_factory):
    """A finished one-epoch toy run (checkpoint `classifier/model.pth.tar-1`)."""
    root = tmp_path_factory.mktemp("toy_root")
    out = root / "run"
    run_toy(files, root, out)
    return root, out


@pytest.fixture(scope="module")
def clip_assets(tmp_path_factory):
    """The colour image folder (6 classes, 5 train images each) and a tiny CLIP checkpoint."""
    root = write_colour_images(str(tmp_path_factory.mktemp("colours")))
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")


def coop_argv(clip_assets, out, phase="base", opts=(), clip_path=None, **kwargs):
    root, tiny_clip = clip_assets
    clip_path = tiny_clip if clip_path is None else clip_path
    argv = base2new_argv("CoOp", COOP_CONFIG, root, clip_path, out, phase, [*COOP_OPTS, *opts], **kwargs)
    return ["--import", "trainers.coop", "--import", "datasets.image_folder", *argv]


def run_coop(clip_assets, out, phase="base", opts=(), clip_path=None, **kwargs):
    return train.main(coop_argv(clip_assets, out, phase, opts, clip_path, **kwargs), plugin_folders=())


@pytest.fixture(scope="module")
def coop_base_run(clip_assets, tmp_path_factory):
    """CoOp (class-specific context) trained one epoch on the 3 base classes."""
    out = tmp_path_factory.mktemp("coop_base")
    run_coop(clip_assets, out, opts=["OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "1", "TEST.NO_TEST", "True"])
    return out


# ---------------------------------------------------------------- paths and names


def test_missing_root(files, tmp_path):
    argv = toy_argv(files, files / "empty_root", tmp_path / "out")
    del argv[argv.index("--root") : argv.index("--root") + 2]
    no_root = r"^No dataset root: pass --root DIR \(the folder that holds the datasets\)$"
    with pytest.raises(train.UsageError, match=no_root):
        train.main(argv, plugin_folders=())
    missing = tmp_path / "no_such_data"
    no_folder = rf"^Dataset root '{re.escape(str(missing))}' \(--root\) does not exist or is not a folder$"
    with pytest.raises(train.UsageError, match=no_folder):
        run_toy(files, missing, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing is written before the input is checked"


def test_missing_dataset_folder(files, tmp_path):
    dtd_yaml = os.path.join(REPO, "configs/datasets/dtd.yaml")
    root = files / "empty_root"
    with pytest.raises(DatasetNotFoundError) as error:
        run_toy(files, root, tmp_path / "out", dataset_yaml=dtd_yaml)
    assert str(error.value) == (
        f"DescribableTextures: expected the folder 'dtd' under --root {root} ({root / 'dtd'} does not exist); "
        "see DATASETS.md#describabletextures"
    )


@pytest.fixture
def dtd_root(tmp_path):
    make_dtd(str(tmp_path / "data"))
    return tmp_path / "data"


def test_malformed_split_json(files, dtd_root, tmp_path):
    split = dtd_root / "dtd" / "split_zhou_DescribableTextures.json"
    split.write_text('{"train": [["banded/image_0000.jpg", 0, "banded"]')
    with pytest.raises(SplitFileError, match=(
        rf"^{re.escape(str(split))} is not valid JSON \(.*\); "
        "replace it with an intact copy or delete it to rebuild it$"
    )):
        run_toy(files, dtd_root, tmp_path / "out", dataset_yaml=os.path.join(REPO, "configs/datasets/dtd.yaml"))
    split.write_text('{"train": [], "val": []}')
    with pytest.raises(SplitFileError, match=(
        rf"^{re.escape(str(split))} must be a JSON object with the lists \['train', 'val', 'test'\], "
        r"found \['train', 'val'\]; "
        "replace it with an intact copy or delete it to rebuild it$"
    )):
        run_toy(files, dtd_root, tmp_path / "out", dataset_yaml=os.path.join(REPO, "configs/datasets/dtd.yaml"))


def test_split_json_naming_missing_images(files, dtd_root, tmp_path):
    image = dtd_root / "dtd" / "images" / "blotchy" / "image_0003.jpg"
    image.unlink()
    split = dtd_root / "dtd" / "split_zhou_DescribableTextures.json"
    with pytest.raises(MissingImagesError) as error:
        run_toy(files, dtd_root, tmp_path / "out", dataset_yaml=os.path.join(REPO, "configs/datasets/dtd.yaml"))
    assert str(error.value) == (
        f"{split}: 1 of 30 entries name images that do not exist, first train[8] {image}; "
        "check --root and the image folder layout"
    )


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture
def corrupt_toy_root(tmp_path):
    root = tmp_path / "data"
    write_toy_images(str(root / "toy"))
    image = root / "toy" / "train" / "green" / "3.png"
    truncate(image)
    return root, image


def test_corrupt_or_truncated_image(files, corrupt_toy_root, tmp_path, monkeypatch):
    root, image = corrupt_toy_root
    expected = (
        rf"Cannot read image {re.escape(str(image))}: .*[Tt]runcated.*\. The file is corrupt or truncated; "
        r"replace it \(re-download the dataset\) or remove it from the split\."
    )
    with pytest.raises(UnreadableImageError, match=f"^{expected}$"):
        run_toy(files, root, tmp_path / "in_process")
    line = run_cli(monkeypatch, toy_argv(files, root, tmp_path / "workers", "DATALOADER.NUM_WORKERS", "1"))
    assert "\n" not in line and "Traceback" not in line
    assert re.fullmatch(f"train.py: error: {expected}", line), line


def test_unknown_trainer_name(files, tmp_path):
    with pytest.raises(RegistryKeyError) as error:
        run_toy(files, files / "empty_root", tmp_path / "out", "--trainer", "ToyTrainr")
    message = str(error.value)
    assert message.startswith('"ToyTrainr" is not in the "TRAINER" registry. Did you mean "ToyTrainer"? Registered: [')
    assert message.endswith(
        "Is the module that defines it imported "
        "(train.py imports trainers/ and datasets/, add others with --import MODULE)?"
    )
    assert not (tmp_path / "out").exists()


def test_unknown_dataset_name(files, tmp_path):
    with pytest.raises(RegistryKeyError) as error:
        run_toy(files, files / "empty_root", tmp_path / "out", "DATASET.NAME", "DescribableTexture")
    assert str(error.value).startswith(
        '"DescribableTexture" is not in the "DATASET" registry. Did you mean "DescribableTextures"? Registered: ['
    )
    assert not (tmp_path / "out").exists(), "the dataset name is checked before the run folder is created"
    no_dataset = files / "no_dataset.yaml"
    no_dataset.write_text("DATASET:\n  NAME: ''\n")
    no_name = r"^No dataset: pass --dataset-config-file configs/datasets/<name>\.yaml"
    with pytest.raises(train.UsageError, match=no_name):
        run_toy(files, files / "empty_root", tmp_path / "out", dataset_yaml=no_dataset)


def test_unknown_config_key_names_the_file_and_the_closest_key(files, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("OPTIM:\n  MAX_EPOCHS: 3\n")
    with pytest.raises(ConfigError) as error:
        run_toy(files, files / "empty_root", tmp_path / "out", "--config-file", str(typo))
    assert str(error.value) == f'Unknown config key "OPTIM.MAX_EPOCHS" from {typo}. Did you mean "OPTIM.MAX_EPOCH"?'
    with pytest.raises(ConfigError, match=(
        r'^Unknown config key "TRAINER.COOP.NCTX" from the command line \(trailing KEY VALUE options\)\. '
        r'Did you mean "TRAINER.COOP.N_CTX"\?'
    )):
        run_toy(files, files / "empty_root", tmp_path / "out", "--import", "trainers.coop", "TRAINER.COOP.NCTX", "4")


def test_wrong_type(files, tmp_path):
    with pytest.raises(ConfigError) as error:
        run_toy(files, files / "empty_root", tmp_path / "out", "OPTIM.MAX_EPOCH", "two")
    assert str(error.value) == (
        'Type mismatch for config key "OPTIM.MAX_EPOCH" from the command line (trailing KEY VALUE options): '
        "expected int (default 1) but got str 'two'."
    )


def test_config_file_not_found(files, tmp_path):
    missing = tmp_path / "configs" / "missing.yaml"
    with pytest.raises(ConfigError) as error:
        run_toy(files, files / "empty_root", tmp_path / "out", "--config-file", str(missing))
    assert str(error.value) == (
        f"Config file not found: '{missing}' (check the path given to --config-file / --dataset-config-file)"
    )


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_of_another_trainer(clip_assets, toy_run, coop_base_run, tmp_path):
    _, toy_out = toy_run
    with pytest.raises(MissingCheckpointError) as error:
        run_coop(clip_assets, tmp_path / "a", "new", model_dir=toy_out, load_epoch=1)
    assert str(error.value) == (
        f"no checkpoint {toy_out / 'prompt_learner' / 'model.pth.tar-1'}; {toy_out} holds checkpoints of classifier, "
        "written by another trainer: evaluate it with the --trainer and --config-file of the run that wrote it"
    )
    root, tiny_clip = clip_assets
    argv = ["--import", "trainers.cocoop", "--import", "datasets.image_folder"] + base2new_argv(
        "CoCoOp", "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", root, tiny_clip, tmp_path / "b", "new",
        ["TRAINER.COCOOP.PREC", "fp32"], model_dir=coop_base_run, load_epoch=1,
    )
    with pytest.raises(CheckpointMismatchError, match=(
        rf"^{re.escape(str(coop_base_run / 'prompt_learner' / 'model.pth.tar-1'))} "
        "does not fit ConditionalPromptLearner: "
        r"unexpected keys \[\], missing keys \['meta_net\..*'\]; "
        r"it was probably saved by another trainer - load it with the trainer \(and config\) that wrote it$"
    )):
        train.main(argv, plugin_folders=())


def test_checkpoint_of_another_class_count(clip_assets, coop_base_run, tmp_path):
    with pytest.raises(CheckpointMismatchError) as error:
        run_coop(clip_assets, tmp_path / "out", "new", ["DATASET.SUBSAMPLE_CLASSES", "all"], model_dir=coop_base_run,
                 load_epoch=1)
    assert str(error.value) == (
        f"{coop_base_run / 'prompt_learner' / 'model.pth.tar-1'}: key 'ctx' has shape (3, 2, 64) but this model "
        "expects (6, 2, 64); class-specific context (CSC True) is tied to the class list it was trained on; "
        "evaluate it on the same classes or train with TRAINER.COOP.CSC False"
    )


def test_eval_only_without_a_trained_model(clip_assets, tmp_path):
    argv = coop_argv(clip_assets, tmp_path / "a", "new", model_dir="unused")
    at = argv.index("--model-dir")
    del argv[at : at + 2]
    with pytest.raises(train.UsageError) as error:
        train.main(argv, plugin_folders=())
    assert str(error.value) == (
        "--eval-only needs --model-dir DIR (the output folder of the training run): trainer CoOp has learned "
        "weights (['prompt_learner']); add --load-epoch N too"
    )
    empty = tmp_path / "never_trained"
    empty.mkdir()
    with pytest.raises(MissingCheckpointError) as error:
        run_coop(clip_assets, tmp_path / "b", "new", model_dir=empty, load_epoch=5)
    assert str(error.value) == (
        f"no checkpoint {empty / 'prompt_learner' / 'model.pth.tar-5'}; "
        "that folder holds no checkpoint: check --model-dir, or train first"
    )
    with pytest.raises(train.UsageError, match=rf"^--model-dir '{re.escape(str(tmp_path / 'typo'))}' does not exist$"):
        run_coop(clip_assets, tmp_path / "c", "new", model_dir=tmp_path / "typo", load_epoch=5)


def test_truncated_checkpoint(files, toy_run, tmp_path):
    root, toy_out = toy_run
    broken = tmp_path / "broken_run"
    (broken / "classifier").mkdir(parents=True)
    checkpoint = broken / "classifier" / "model.pth.tar-1"
    checkpoint.write_bytes((toy_out / "classifier" / "model.pth.tar-1").read_bytes())
    truncate(checkpoint)
    with pytest.raises(UnreadableCheckpointError, match=(
        rf"^{re.escape(str(checkpoint))} is truncated or corrupt \(.*\); replace it with an intact copy, or "
        "delete the run folder and train again$"
    )):
        run_toy(files, root, tmp_path / "eval", "--eval-only", "--model-dir", str(broken), "--load-epoch", "1")


# ---------------------------------------------------------------- data and machine


def test_num_shots_larger_than_a_class_keeps_all_its_images(files, clip_assets, tmp_path, capsys):
    root, _ = clip_assets
    argv = [
        "--root", root, "--output-dir", str(tmp_path / "out"), "--seed", "7", "--trainer", "ToyTrainer",
        "--dataset-config-file", os.path.join(REPO, "configs/datasets/image_folder.yaml"),
        "--config-file", str(files / "toy_trainer.yaml"), "--no-train",
        "--import", "tests.helpers.toy_dataset", "--import", "datasets.image_folder",
        "DATASET.FOLDER", "colours", "DATASET.NUM_SHOTS", "8",
    ]
    train.main(argv, plugin_folders=())
    out = capsys.readouterr().out
    assert (
        "Warning: NUM_SHOTS=8 but 6 class(es) have fewer training images, all of their images are kept: "
        "blue, dark grey, green, red, violet, yellow"
    ) in out
    assert re.search(r"# train_x\s+30\b", out), "5 train images x 6 classes, all kept"


def test_cuda_requested_on_a_cpu_machine(files, toy_run, tmp_path, monkeypatch):
    root, _ = toy_run
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CudaUnavailableError) as error:
        run_toy(files, root, tmp_path / "out", "USE_CUDA", "True")
    assert str(error.value) == (
        "USE_CUDA True was set explicitly (from the command line (trailing KEY VALUE options)) but no CUDA device "
        "is available (torch.cuda.is_available() is False). Set USE_CUDA False to run on CPU, or check the GPU / "
        "CUDA_VISIBLE_DEVICES."
    )


def test_out_of_disk_while_saving_a_checkpoint(files, toy_run, tmp_path, monkeypatch):
    root, _ = toy_run
    out = tmp_path / "out"
    fail_writes(monkeypatch, ["model.pth.tar-2"])
    line = run_cli(monkeypatch, toy_argv(files, root, out, "OPTIM.MAX_EPOCH", "2"))
    second = out / "classifier" / "model.pth.tar-2"
    assert line == (
        f"train.py: error: [Errno 28] No space left on device while writing {second}; the previous version of that "
        "file (if any) is intact. Free some disk space and run again (training resumes from the last checkpoint)."
    )
    assert sorted(os.listdir(out / "classifier")) == ["checkpoint", "model.pth.tar-1"], "no partial file is left"
    assert (out / "classifier" / "checkpoint").read_text() == "model.pth.tar-1\n"
    assert not is_run_done(out)
    with pytest.raises(DiskFullError):
        run_toy(files, root, tmp_path / "again", "OPTIM.MAX_EPOCH", "2")


# ---------------------------------------------------------------- the CLIP backbone


def test_clip_weights_missing_or_corrupt(clip_assets, tmp_path, monkeypatch):
    missing = tmp_path / "pretrained" / "miniclip.pt"
    monkeypatch.setitem(clip.loader._LOCAL_MODELS, "MiniCLIP", (missing, "python tools/pretrain_miniclip.py"))
    with pytest.raises(BackboneLoadError) as error:
        run_coop(clip_assets, tmp_path / "a", opts=["MODEL.BACKBONE.NAME", "MiniCLIP"], clip_path="")
    assert str(error.value) == (
        "Cannot load the CLIP backbone (MODEL.BACKBONE.NAME / PATH): checkpoint of local model 'MiniCLIP' not found "
        f"at {missing}; build it with `python tools/pretrain_miniclip.py`"
    )
    with pytest.raises(BackboneLoadError) as error:
        run_coop(clip_assets, tmp_path / "b", clip_path=tmp_path / "nowhere.pt")
    assert str(error.value) == (
        "Cannot load the CLIP backbone (MODEL.BACKBONE.NAME / PATH): MODEL.BACKBONE.PATH points to a missing file: "
        f"{tmp_path / 'nowhere.pt'}"
    )
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(clip_assets[1].read_bytes())
    truncate(corrupt)
    with pytest.raises(BackboneLoadError, match=(
        r"^Cannot load the CLIP backbone \(MODEL.BACKBONE.NAME / PATH\): "
        rf"could not read checkpoint {re.escape(str(corrupt))}: "
        r"it is neither a TorchScript archive nor a state dict \(\w+\); the file is corrupted or truncated: "
        "delete it and download or build it again$"
    )):
        run_coop(clip_assets, tmp_path / "c", clip_path=corrupt)


@pytest.mark.parametrize("opts, clip_path, message", [
    (["MODEL.BACKBONE.NAME", "ViT-B/17"], "", r"unknown CLIP model 'ViT-B/17' .*Did you mean 'ViT-B/16'\?"),
    ([], "nowhere.pt", r"MODEL.BACKBONE.PATH points to a missing file: .*nowhere.pt$"),
])
def test_missing_backbone_fails_before_the_dataset_is_read(clip_assets, tmp_path, monkeypatch, opts, clip_path, message):
    def no_dataset(self):
        raise AssertionError("the dataset was read before the backbone was checked")

    monkeypatch.setattr(SimpleTrainer, "build_data_loader", no_dataset)
    clip_path = tmp_path / clip_path if clip_path else clip_path
    with pytest.raises(BackboneLoadError, match=r"^Cannot load the CLIP backbone \(MODEL.BACKBONE.NAME / PATH\): " + message):
        run_coop(clip_assets, tmp_path / "out", opts=opts, clip_path=clip_path)
    argv = coop_argv(clip_assets, tmp_path / "zs", opts=opts, clip_path=clip_path)
    argv[argv.index("CoOp")] = "ZeroshotCLIP"
    with pytest.raises(BackboneLoadError, match=message):
        train.main(["--import", "trainers.zsclip", "--eval-only", *argv], plugin_folders=())


# ---------------------------------------------------------------- what the user sees


def test_cli_prints_one_line_for_input_errors(files, tmp_path, monkeypatch):
    line = run_cli(monkeypatch, toy_argv(files, files / "empty_root", tmp_path / "out", "OPTIM.MAX_EPOCHS", "3"))
    assert line == (
        'train.py: error: Unknown config key "OPTIM.MAX_EPOCHS" from the command line (trailing KEY VALUE options). '
        'Did you mean "OPTIM.MAX_EPOCH"?'
    )


def test_python_train_py_shows_no_traceback(files, tmp_path):
    dtd_yaml = os.path.join(REPO, "configs/datasets/dtd.yaml")
    argv = toy_argv(files, files / "empty_root", tmp_path / "out", dataset_yaml=dtd_yaml)
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), *argv], cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    root = files / "empty_root"
    assert result.stderr.strip().splitlines() == [
        f"train.py: error: DescribableTextures: expected the folder 'dtd' under --root {root} "
        f"({root / 'dtd'} does not exist); see DATASETS.md#describabletextures"
    ]
