"""Issue #18, items 3 and 4: bad images found before training, own-folder datasets kept apart, and the doctor.

The image check runs when the data manager is built (before any model); a
list that passed is recorded beside the few-shot cache, so the next run only
stats its files.
"""
import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

import dassl.data.image_check as image_check
from dassl.config import get_cfg_default
from dassl.data.data_manager import build_data_loader
from dassl.data.datasets.dataset_errors import DatasetProblem, MissingImagesError
from dassl.utils.errors import UnreadableImageError
from tests.helpers.fake_benchmarks import dataset_cfg, make_image_folder
from tests.helpers.trainer_runs import REPO, write_colour_images
from tests.test_check_datasets import doctor, lines_by_name
from tests.test_errors import files, run_toy, truncate  # noqa: F401 (fixture)

FOLDER_YAML = os.path.join(REPO, "configs", "datasets", "image_folder.yaml")


@pytest.fixture
def colours(tmp_path):
    return write_colour_images(str(tmp_path / "data"), per_class=5)


def run_folder_toy(files, root, out):  # noqa: F811
    """The toy trainer on the colour folder, without training: the dataset and its checks only."""
    return run_toy(files, root, out, "--import", "datasets.image_folder", "--no-train", "DATASET.FOLDER", "colours",
                   dataset_yaml=FOLDER_YAML)


def test_a_truncated_image_of_any_split_stops_the_run_before_training(files, colours, tmp_path):
    run_folder_toy(files, colours, tmp_path / "first")  # writes the split
    split = json.loads(open(os.path.join(colours, "colours", "split_colours.json")).read())
    image = os.path.join(colours, "colours", split["test"][-1][0])
    truncate(pathlib.Path(image))
    with pytest.raises(UnreadableImageError) as error:
        run_folder_toy(files, colours, tmp_path / "out")
    assert str(error.value) == (
        f"Cannot read image {image}: Truncated File Read. The file is corrupt or truncated; replace it "
        "(re-download the dataset) or remove it from the split."
    )


def test_a_verified_list_is_not_checked_again_until_a_file_changes(files, colours, tmp_path, monkeypatch):
    run_folder_toy(files, colours, tmp_path / "first")
    record = os.path.join(colours, "colours", "split_fewshot", "image_check.json")
    assert len(json.loads(open(record).read())["verified"]) == 3, "train, val and test lists"
    checked = []
    real = image_check.image_problem
    monkeypatch.setattr(image_check, "image_problem", lambda path: checked.append(path) or real(path))
    run_folder_toy(files, colours, tmp_path / "second")
    assert checked == []
    split = json.loads(open(os.path.join(colours, "colours", "split_colours.json")).read())
    touched = os.path.join(colours, "colours", split["val"][0][0])
    os.utime(touched, ns=(1, 1))
    run_folder_toy(files, colours, tmp_path / "third")
    assert touched in checked and len(checked) == len(split["val"]), "only the changed list is checked again"


def test_a_missing_image_is_named_with_its_split(tmp_path):
    with pytest.raises(MissingImagesError, match=r"^test split: image 0 of 1, .*gone.png, does not exist"):
        image_check.list_digest("test", [str(tmp_path / "gone.png")])


def test_a_cut_jpeg_is_decoded_to_confirm(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    assert image_check.image_problem(str(path)) is None
    truncate(path, keep=0.6)
    assert "truncated" in image_check.image_problem(str(path))


def test_the_own_folder_dataset_takes_only_image_files(tmp_path, capsys):
    from datasets.image_folder import ImageFolderDataset

    make_image_folder(tmp_path, count=5)
    (tmp_path / "my_set" / "zebra" / "Thumbs.db").write_bytes(b"\x00" * 10)
    (tmp_path / "my_set" / "zebra" / "notes.txt").write_text("shot at the zoo\n")
    dataset = ImageFolderDataset(dataset_cfg(tmp_path, "ImageFolderDataset", folder="my_set"))
    names = {os.path.basename(item.impath) for item in dataset.train_x + dataset.val + dataset.test}
    assert "Thumbs.db" not in names and "notes.txt" not in names and len(names) == 5
    assert "Note: skipped 2 file(s) that are not images by their extension" in capsys.readouterr().out


# ---------------------------------------------------------------- the doctor


@pytest.fixture
def my_set(tmp_path):
    make_image_folder(tmp_path, count=5)
    return tmp_path


def test_doctor_reports_unreadable_images_and_long_class_names(my_set, capsys):
    write_colour = my_set / "my_set" / "zebra" / "img_0.png"
    write_colour.write_bytes(b"not an image at all")
    long_name = "qz" * 40
    shutil.copytree(my_set / "my_set" / "red_panda", my_set / "my_set" / long_name)
    code, by_name, _ = lines_by_name(capsys, my_set, "--folder", "my_set")
    status, line = by_name["ImageFolderDataset:my_set"]
    assert code == 1 and status == "PROBLEM"
    assert "unreadable image(s) in the" in line and str(write_colour) in line
    assert "class name(s) longer than 58 CLIP tokens" in line and long_name in line


def test_doctor_reports_a_split_entry_outside_the_dataset(my_set, capsys):
    from datasets.image_folder import ImageFolderDataset

    ImageFolderDataset(dataset_cfg(my_set, "ImageFolderDataset", folder="my_set"))  # writes the split
    split_path = my_set / "my_set" / "split_my_set.json"
    split = json.loads(split_path.read_text())
    split["test"][0][0] = "/etc/hostname"
    split_path.write_text(json.dumps(split))
    code, by_name, _ = lines_by_name(capsys, my_set, "--folder", "my_set")
    assert code == 1 and "entry test[0] names /etc/hostname, outside the image folder" in by_name["ImageFolderDataset:my_set"][1]


def test_doctor_reads_a_per_folder_yaml(my_set, tmp_path, capsys, monkeypatch):
    configs = tmp_path / "configs"
    shutil.copytree(doctor.CONFIG_DIR, configs)
    (configs / "my_set.yaml").write_text('DATASET:\n  NAME: "ImageFolderDataset"\n  FOLDER: "my_set"\n')
    monkeypatch.setattr(doctor, "CONFIG_DIR", str(configs))
    code, by_name, out = lines_by_name(capsys, my_set, "--dataset", "my_set")
    assert code == 0, out
    assert by_name["my_set"][0] == "OK" and "3 classes" in by_name["my_set"][1]


def test_an_empty_list_of_images_is_an_input_error():
    with pytest.raises(DatasetProblem, match="^Cannot build a data loader over an empty list of images; check"):
        build_data_loader(get_cfg_default(), "RandomSampler", [], 4)
