"""ImageFolderDataset: the user's own DATA/<folder>/<class>/<images>."""
import json
import random
from collections import Counter

import pytest

import datasets
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.dataset_errors import DatasetNotFoundError, DatasetProblem
from helpers.fake_benchmarks import dataset_cfg, make_image_folder, write_image

datasets.import_all()


def build(root, folder="my_set", **options):
    return DATASET_REGISTRY.get("ImageFolderDataset")(dataset_cfg(root, "ImageFolderDataset", folder=folder, **options))


def test_split_is_built_once_saved_beside_the_images_and_reused(tmp_path):
    make_image_folder(tmp_path)
    random.seed(1)
    first = build(tmp_path, seed=1)
    split_file = tmp_path / "my_set" / "split_my_set.json"
    with open(split_file) as f:
        saved = json.load(f)
    assert [len(saved[key]) for key in ("train", "val", "test")] == [15, 6, 9]
    assert saved["train"][0][0].split("/")[0] in {"red_panda", "tabby_cat", "zebra"}
    write_image(str(tmp_path / "my_set" / "zebra" / "img_new.png"))
    random.seed(2)
    second = build(tmp_path, seed=2)
    assert [item.impath for item in second.test] == [item.impath for item in first.test]


def test_split_does_not_depend_on_the_run_seed(tmp_path):
    make_image_folder(tmp_path / "a")
    make_image_folder(tmp_path / "b")
    random.seed(1)
    one = build(tmp_path / "a", seed=1)
    random.seed(7)
    other = build(tmp_path / "b", seed=7)
    assert [item.impath.split("my_set")[1] for item in one.val] == [item.impath.split("my_set")[1] for item in other.val]


def test_class_names_from_folders_or_classnames_txt(tmp_path):
    make_image_folder(tmp_path)
    assert build(tmp_path).classnames == ["red panda", "tabby cat", "zebra"]
    make_image_folder(tmp_path, folder="named")
    (tmp_path / "named" / "classnames.txt").write_text("red_panda lesser panda\ntabby_cat cat\nzebra plains zebra\n")
    assert build(tmp_path, folder="named").classnames == ["lesser panda", "cat", "plains zebra"]


def test_classnames_txt_missing_a_folder_is_named(tmp_path):
    make_image_folder(tmp_path)
    (tmp_path / "my_set" / "classnames.txt").write_text("red_panda lesser panda\n")
    with pytest.raises(DatasetProblem, match="tabby_cat, zebra"):
        build(tmp_path)


def test_few_shot_and_base_new_work_and_the_cache_folder_is_not_a_class(tmp_path):
    make_image_folder(tmp_path)
    random.seed(1)
    base = build(tmp_path, num_shots=2, subsample="base")
    assert base.classnames == ["red panda", "tabby cat"]
    assert set(Counter(item.label for item in base.train_x).values()) == {2}
    assert (tmp_path / "my_set" / "split_fewshot" / "shot_2-seed_1.json").is_file()
    (tmp_path / "my_set" / "split_my_set.json").unlink()
    assert build(tmp_path, num_shots=2, subsample="new").classnames == ["zebra"]


def test_missing_folder_key_and_too_small_classes_fail_clearly(tmp_path):
    make_image_folder(tmp_path, count=3)
    with pytest.raises(DatasetNotFoundError, match="DATASET.FOLDER"):
        build(tmp_path, folder="")
    with pytest.raises(DatasetProblem, match="'red panda' has 3 image"):
        build(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="'nothing_here' under --root"):
        build(tmp_path, folder="nothing_here")
