"""The shipped mini world: upstream layout, disjoint pretraining images, dataset classes, MiniCLIP's zero-shot skill."""
import hashlib
import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

import clip
import datasets
from dassl.config import apply_cfg_extensions, get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY
from datasets.mini_world import DATASET_DIRS, MARKER_NAME, ensure_extracted, extract_all, read_pretrain_list
from tests.helpers.tool_scripts import load_tool

datasets.import_all()

EXPECTED = {
    # dataset_dir: (registered name, split file, classes, train images per class at least)
    "mini_fashion_mnist": ("MiniFashionMNIST", "split_zhou_MiniFashionMNIST.json", 10, 40),
    "mini_clipart": ("MiniClipart", "split_zhou_MiniClipart.json", 33, 16),
}
FASHION_NAMES = {"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}




@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return extract_all(tmp_path_factory.mktemp("mini_world"))


def read_split(root, dataset_dir):
    return json.loads((root / dataset_dir / EXPECTED[dataset_dir][1]).read_text())


def pixel_digest(path):
    from PIL import Image

    with Image.open(path) as image:
        return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


@pytest.mark.parametrize("dataset_dir", DATASET_DIRS)
def test_extracted_dataset_has_the_upstream_layout(root, dataset_dir):
    folder = root / dataset_dir
    split_file = folder / EXPECTED[dataset_dir][1]
    assert split_file.read_text().startswith('{\n    "train": [\n        [\n')  # json.dump(..., indent=4)
    split = json.loads(split_file.read_text())
    assert sorted(split) == ["test", "train", "val"]
    labels_to_names = {}
    for entries in split.values():
        for path, label, classname in entries:
            assert (folder / "images" / path).is_file()
            assert labels_to_names.setdefault(label, classname) == classname
    assert sorted(labels_to_names) == list(range(EXPECTED[dataset_dir][2]))
    assert [labels_to_names[i] for i in sorted(labels_to_names)] == sorted(labels_to_names.values())
    per_class_train = Counter(label for _, label, _ in split["train"])
    assert min(per_class_train.values()) >= EXPECTED[dataset_dir][3]
    assert min(Counter(label for _, label, _ in split["val"]).values()) >= 4
    assert (folder / "LICENSE.txt").read_text().strip()


def test_fashion_class_names_are_the_real_ones(root):
    names = {name for _, _, name in read_split(root, "mini_fashion_mnist")["test"]}
    assert names == FASHION_NAMES


@pytest.mark.parametrize("dataset_dir", DATASET_DIRS)
def test_pretraining_images_are_disjoint_from_split_images(root, dataset_dir):
    folder = root / dataset_dir
    split_paths = [folder / "images" / p for entries in read_split(root, dataset_dir).values() for p, _, _ in entries]
    pretrain = read_pretrain_list(folder)
    assert pretrain and all(Path(path).is_file() for path, _, _ in pretrain)
    assert {Path(p).resolve() for p, _, _ in pretrain}.isdisjoint(p.resolve() for p in split_paths)
    split_pixels = {pixel_digest(p) for p in split_paths}
    assert not split_pixels & {pixel_digest(p) for p, _, _ in pretrain}
    assert {name for _, _, name in pretrain} == {name for _, _, name in read_split(root, dataset_dir)["test"]}


@pytest.mark.parametrize("dataset_dir", DATASET_DIRS)
def test_captions_describe_every_split_image_without_naming_its_class(root, dataset_dir):
    folder = root / dataset_dir
    lines = (folder / "captions.txt").read_text().splitlines()
    captions = dict(line.split("\t") for line in lines)
    split = read_split(root, dataset_dir)
    assert set(captions) == {p for entries in split.values() for p, _, _ in entries}
    assert len(set(captions.values())) > len(captions) // 10
    if dataset_dir == "mini_fashion_mnist":
        for path, _, classname in split["test"]:
            assert classname not in captions[path].lower()


def test_an_archive_from_another_build_is_not_mixed_with_an_old_extraction(root, tmp_path):
    (root / "mini_clipart" / MARKER_NAME).write_text("0" * 64 + "\n")
    try:
        with pytest.raises(RuntimeError, match="delete .*mini_clipart"):
            ensure_extracted("mini_clipart", root)
    finally:
        (root / "mini_clipart" / MARKER_NAME).unlink()


def build(root, name, num_shots=-1, subsample="all"):
    cfg = apply_cfg_extensions(get_cfg_default())
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = 1
    random.seed(1)
    return DATASET_REGISTRY.get(name)(cfg)


@pytest.mark.parametrize("dataset_dir", DATASET_DIRS)
def test_dataset_classes_unpack_on_first_use_and_give_base_new_and_few_shot_counts(tmp_path, dataset_dir):
    name, _, num_classes, _ = EXPECTED[dataset_dir]
    everything = build(tmp_path, name)
    assert (tmp_path / dataset_dir / "images").is_dir()
    assert everything.num_classes == num_classes
    base = build(tmp_path, name, num_shots=16, subsample="base")
    new = build(tmp_path, name, num_shots=16, subsample="new")
    assert base.num_classes == math.ceil(num_classes / 2)
    assert new.num_classes == num_classes - base.num_classes
    assert set(Counter(item.label for item in base.train_x).values()) == {16}
    assert set(Counter(item.label for item in base.val).values()) == {4}
    assert {item.classname for item in base.test}.isdisjoint(item.classname for item in new.test)
    assert len(base.test) + len(new.test) == len(everything.test)
    assert (tmp_path / dataset_dir / "split_fewshot" / "shot_16-seed_1.json").is_file()


@pytest.fixture(scope="module")
def miniclip():
    model, preprocess = clip.load("MiniCLIP")
    return model, preprocess


def test_miniclip_is_a_small_fp16_openai_state_dict():
    path = Path(clip.__file__).parent / "pretrained" / "miniclip.pt"
    assert path.stat().st_size < 20 * 2**20
    state = torch.load(path, weights_only=True)
    assert state["token_embedding.weight"].shape[0] == 49408
    assert state["positional_embedding"].shape[0] == 77
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


# Zero-shot accuracy at least this multiple of chance: MiniClipart's classes are pretraining concepts, while
# MiniFashionMNIST is the domain gap (its pretraining photos were almost never named), weak but not blind.
ZERO_SHOT_FLOOR = {"mini_clipart": 2.0, "mini_fashion_mnist": 1.5}


@pytest.mark.parametrize("dataset_dir", DATASET_DIRS)
def test_miniclip_zero_shot_is_above_chance_on_base_and_new(root, miniclip, dataset_dir):
    model, preprocess = miniclip
    pretrain = load_tool("pretrain_miniclip")
    results = pretrain.zero_shot_accuracy(model, preprocess, root / dataset_dir, limit_per_class=12)
    for part, result in results.items():
        chance = 1 / result["classes"]
        assert result["accuracy"] > ZERO_SHOT_FLOOR[dataset_dir] * chance, (dataset_dir, part, result)
