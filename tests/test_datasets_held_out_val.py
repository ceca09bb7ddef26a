"""DATASET.VAL_FROM_TRAIN: ImageNet's held-out val (TGP-T's rule) on a tiny tree in the real layout."""
import json
import os
import random
from collections import Counter
from types import SimpleNamespace

import pytest

import datasets
from dassl.config import ConfigError, merge_from_file
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.dataset_errors import SplitFileError
from dassl.data.datasets.few_shot import fewshot_cache_path
from dassl.data.datasets.held_out_val import held_out_val_cache_path
from dassl.data.datasets.split_files import SPLIT_HASH_KEY
from helpers.fake_benchmarks import FAKES, WNIDS, dataset_cfg, write_image
import trainers.coop  # noqa: F401  (registers TRAINER.COOP, which the CoOp config sets)
from trainers.tgpt import check_val_set

datasets.import_all()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_PER_CLASS = 40


def make_imagenet(root):
    """A fake ImageNet with 40 train images per class (3 wnids) and 3 official val images per class."""
    dataset = FAKES["ImageNet"].build(root)
    for wnid in WNIDS:
        for index in range(10, TRAIN_PER_CLASS):
            write_image(os.path.join(dataset, "images", "train", wnid, f"{wnid}_{index}.JPEG"))
    return root


@pytest.fixture
def root(tmp_path):
    return make_imagenet(tmp_path / "DATA")


def build(root, num_shots=2, seed=1, val_from_train=8, subsample="all", config=None):
    """ImageNet as train.py builds it: the global random seeded with the run seed first."""
    cfg = dataset_cfg(root, "ImageNet", num_shots=num_shots, subsample=subsample, seed=seed)
    if config:
        merge_from_file(cfg, os.path.join(REPO, "configs", "trainers", config))
    else:
        cfg.DATASET.VAL_FROM_TRAIN = val_from_train
    random.seed(seed)
    return DATASET_REGISTRY.get("ImageNet")(cfg)


def relative(dataset, items):
    return [os.path.relpath(item.impath, dataset.dataset_dir) for item in items]


def test_val_is_held_out_from_train_outside_the_few_shot_sample(root):
    dataset = build(root, num_shots=2)
    assert set(relative(dataset, dataset.val)).isdisjoint(relative(dataset, dataset.train_x))
    assert all(path.startswith(os.path.join("images", "train", "")) for path in relative(dataset, dataset.val))
    assert Counter(item.label for item in dataset.val) == {0: 8, 1: 8, 2: 8}
    assert dataset.val is not dataset.test and len(dataset.test) == 9


def test_val_size_is_max_of_shots_and_the_minimum_or_all_that_remain(root):
    sixteen = build(root, num_shots=16)
    assert set(Counter(item.label for item in sixteen.val).values()) == {16}
    most = build(root, num_shots=30)
    assert set(Counter(item.label for item in most.val).values()) == {TRAIN_PER_CLASS - 30}
    assert set(relative(most, most.val)).isdisjoint(relative(most, most.train_x))


def test_val_is_deterministic_for_a_seed_and_differs_across_seeds(root, tmp_path):
    first = build(root, seed=1)
    again = build(make_imagenet(tmp_path / "copy"), seed=1)
    assert relative(again, again.val) == relative(first, first.val)
    other_seed = build(root, seed=2)
    assert relative(other_seed, other_seed.val) != relative(first, first.val)
    assert set(relative(other_seed, other_seed.val)).isdisjoint(relative(other_seed, other_seed.train_x))


def test_cache_is_relative_json_beside_the_few_shot_cache_and_reused(root):
    first = build(root)
    cache = held_out_val_cache_path(first.dataset_dir, 2, 1, 8)
    assert os.path.dirname(cache) == os.path.dirname(fewshot_cache_path(first.dataset_dir, 2, 1))
    assert os.path.basename(cache) == "shot_2-seed_1-val_8.json"
    with open(cache) as f:
        content = json.load(f)
    assert set(content) == {"val", SPLIT_HASH_KEY} and [row[0] for row in content["val"]] == relative(first, first.val)
    content["val"] = content["val"][:5]
    with open(cache, "w") as f:
        json.dump(content, f)
    reused = build(root)
    assert relative(reused, reused.val) == relative(first, first.val)[:5]


def test_base_run_validates_on_base_classes_only_and_shares_the_cache(root):
    all_classes = build(root)
    base = build(root, subsample="base")
    new = build(root, subsample="new")
    assert base.classnames == ["tench", "goldfish"] and {item.label for item in base.val} == {0, 1}
    assert relative(base, base.val) + relative(new, new.val) == relative(all_classes, all_classes.val)
    assert sorted(os.listdir(os.path.join(base.dataset_dir, "split_fewshot"))) == [
        "shot_2-seed_1-val_8.json", "shot_2-seed_1.json"]


def test_a_cache_drawn_for_another_few_shot_sample_is_refused(root):
    dataset = build(root)
    cache = held_out_val_cache_path(dataset.dataset_dir, 2, 1, 8)
    with open(cache) as f:
        content = json.load(f)
    content["val"][0][0] = relative(dataset, dataset.train_x)[0]
    with open(cache, "w") as f:
        json.dump(content, f)
    with pytest.raises(SplitFileError, match="few-shot train sample.*delete it"):
        build(root)


def test_a_cache_of_another_few_shot_sample_is_drawn_again(root, capsys):
    first = build(root)
    fewshot = fewshot_cache_path(first.dataset_dir, 2, 1)
    with open(fewshot) as f:
        content = json.load(f)
    content["train"][0][0] = relative(first, first.val)[0]  # another sample of the same split
    with open(fewshot, "w") as f:
        json.dump(content, f)
    capsys.readouterr()
    again = build(root)
    assert "few-shot sample changed since" in capsys.readouterr().out
    assert relative(again, again.train_x)[0] not in relative(again, again.val)


def test_settings_that_cannot_work_stop_before_the_folders_are_listed(root):
    with pytest.raises(ConfigError, match="DATASET.NUM_SHOTS is -1"):
        build(root, num_shots=-1)
    with pytest.raises(ConfigError, match=r"^DATASET.VAL_FROM_TRAIN must be an integer >= 0; got -1\."):
        build(root, val_from_train=-1)
    assert not (root / "imagenet" / "split_imagenet.json").exists()


def test_coop_keeps_validating_on_test_and_tgpt_configs_hold_out(root):
    coop = build(root, config="CoOp/vit_b16_ctxv1.yaml")
    assert coop.val is coop.test
    assert os.listdir(os.path.join(coop.dataset_dir, "split_fewshot")) == ["shot_2-seed_1.json"]
    tgpt = build(root, config="TGPT/vit_b16_imagenet.yaml")
    assert set(Counter(item.label for item in tgpt.val).values()) == {8}
    assert set(relative(tgpt, tgpt.val)).isdisjoint(relative(tgpt, tgpt.train_x))


def test_val_set_warning_only_when_best_val_would_select_on_test(root, capsys):
    build(root, config="CoOp/vit_b16_ctxv1.yaml")
    assert "Warning" not in capsys.readouterr().out
    cfg = dataset_cfg(root, "ImageNet", num_shots=2)
    cfg.TEST.FINAL_MODEL = "best_val"
    DATASET_REGISTRY.get("ImageNet")(cfg)
    assert "best_val selects on the test set" in capsys.readouterr().out


def test_splits_with_a_val_list_ignore_the_key(tmp_path):
    FAKES["Caltech101"].build(tmp_path)
    cfg = dataset_cfg(tmp_path, "Caltech101", num_shots=2)
    cfg.DATASET.VAL_FROM_TRAIN = 8
    dataset = DATASET_REGISTRY.get("Caltech101")(cfg)
    assert set(Counter(item.label for item in dataset.val).values()) == {2}
    assert all(item.impath.endswith(("image_0005.jpg", "image_0006.jpg")) for item in dataset.val)
    assert os.listdir(os.path.join(dataset.dataset_dir, "split_fewshot")) == ["shot_2-seed_1.json"]


def test_tgpt_refuses_to_select_on_the_test_set():
    cfg = SimpleNamespace(TEST=SimpleNamespace(NO_TEST=False, FINAL_MODEL="best_val"),
                          DATASET=SimpleNamespace(NAME="ImageNet"))
    test = ["a test image"]
    with pytest.raises(ConfigError, match="DATASET.VAL_FROM_TRAIN 8"):
        check_val_set(cfg, SimpleNamespace(val=test, test=test))
    check_val_set(cfg, SimpleNamespace(val=["a held-out image"], test=test))
    cfg.TEST.FINAL_MODEL = "last_step"
    check_val_set(cfg, SimpleNamespace(val=test, test=test))
