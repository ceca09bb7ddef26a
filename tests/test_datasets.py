"""The 15 benchmark loaders on tiny trees in the upstream layouts."""
import json
import os
import random
import shutil
from collections import Counter, defaultdict

import pytest

import datasets
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.base_new import subsample_classes
from dassl.data.datasets.dataset_errors import DatasetNotFoundError, DatasetProblem, MissingImagesError, SplitFileError
from dassl.data.datasets.few_shot import fewshot_cache_path
from dassl.data.datasets.split_files import SPLIT_HASH_KEY
from helpers.fake_benchmarks import FAKES, IMAGES_PER_CLASS, dataset_cfg, make_all

datasets.import_all()

TEST_ONLY = ("ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")
WITH_SPLIT = [name for name in FAKES if name not in TEST_ONLY + ("ImageNet",)]


def build(root, name, **options):
    return DATASET_REGISTRY.get(name)(dataset_cfg(root, name, **options))


def per_class(items):
    return Counter(item.label for item in items)


def relative(dataset, items):
    return [os.path.relpath(item.impath, dataset.dataset_dir) for item in items]


@pytest.fixture(scope="module")
def all_root(tmp_path_factory):
    return make_all(tmp_path_factory.mktemp("benchmarks"))


@pytest.fixture
def root(tmp_path):
    return tmp_path / "DATA"


@pytest.mark.parametrize("name", list(FAKES))
def test_class_names_follow_the_renaming_rules(all_root, name):
    dataset = build(all_root, name)
    assert dataset.classnames == list(FAKES[name].classnames)
    assert dataset.num_classes == len(FAKES[name].classnames)


@pytest.mark.parametrize("name", WITH_SPLIT)
def test_split_sizes_come_from_the_split_file(all_root, name):
    dataset = build(all_root, name)
    n = len(FAKES[name].classnames)
    assert (len(dataset.train_x), len(dataset.val), len(dataset.test)) == (5 * n, 2 * n, 3 * n)
    assert all(os.path.isabs(item.impath) and os.path.isfile(item.impath) for item in dataset.test)


def test_imagenet_uses_the_official_val_set_as_test_and_val(all_root):
    dataset = build(all_root, "ImageNet")
    assert len(dataset.train_x) == 3 * IMAGES_PER_CLASS
    assert dataset.val is dataset.test and len(dataset.test) == 9
    assert {item.impath.split(os.sep)[-3] for item in dataset.test} == {"val"}


@pytest.mark.parametrize("name", TEST_ONLY)
def test_variants_are_test_only_and_ignore_shots_and_subsample(all_root, name):
    dataset = build(all_root, name, num_shots=1, subsample="base")
    assert dataset.train_x == dataset.test and dataset.val is None
    assert dataset.classnames == list(FAKES[name].classnames)


def test_imagenetv2_folder_numbers_are_imagenet_labels(all_root):
    dataset = build(all_root, "ImageNetV2")
    assert {(item.impath.split(os.sep)[-2], item.label) for item in dataset.test} == {("0", 0), ("1", 1), ("2", 2)}


def test_base_and_new_halves_are_relabelled_from_zero(all_root):
    base = build(all_root, "Caltech101", subsample="base")
    new = build(all_root, "Caltech101", subsample="new")
    assert base.classnames == ["face", "leopard", "motorbike"]
    assert new.classnames == ["accordion", "airplane"]
    assert set(per_class(new.test)) == {0, 1} and per_class(new.test)[0] == 3
    assert {item.classname for item in new.train_x + new.val + new.test} == {"accordion", "airplane"}


def test_base_is_computed_on_the_few_shot_train_labels():
    items = [type("Item", (), {"label": label, "impath": f"/x/{label}", "classname": str(label)})()
             for label in (7, 3, 9)]
    train, test = subsample_classes(items, items, subsample="base")
    assert sorted((item.label, item.classname) for item in train) == [(0, "3"), (1, "7")]
    with pytest.raises(ValueError, match="SUBSAMPLE_CLASSES"):
        subsample_classes(items, subsample="half")


def test_few_shot_counts_and_val_capped_at_four(root):
    FAKES["DescribableTextures"].build(root)
    dataset = build(root, "DescribableTextures", num_shots=2)
    assert set(per_class(dataset.train_x).values()) == {2}
    assert set(per_class(dataset.val).values()) == {2}
    assert len(dataset.test) == 9


def test_classes_short_of_shots_keep_all_images_with_one_warning(root, capsys):
    FAKES["DescribableTextures"].build(root)
    dataset = build(root, "DescribableTextures", num_shots=8)
    assert set(per_class(dataset.train_x).values()) == {5}
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Warning")]
    assert len(warnings) == 1 and "banded, blotchy, braided" in warnings[0] and "NUM_SHOTS=8" in warnings[0]


def upstream_sample(split_file, key, num_shots):
    """Upstream's generate_fewshot_dataset on the split-file order, with the global random."""
    with open(split_file) as f:
        rows = json.load(f)[key]
    by_label = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row[0])
    return [path for paths in by_label.values()
            for path in (random.sample(paths, num_shots) if len(paths) >= num_shots else paths)]


def test_same_seed_gives_upstreams_sample(root):
    FAKES["Food101"].build(root)
    split_file = root / "food-101" / "split_zhou_Food101.json"
    random.seed(3)
    expected_train = upstream_sample(split_file, "train", 3)
    expected_val = upstream_sample(split_file, "val", 3)
    random.seed(3)
    dataset = build(root, "Food101", num_shots=3, seed=3)
    image_dir = os.path.join(dataset.dataset_dir, "images")
    assert [os.path.relpath(item.impath, image_dir) for item in dataset.train_x] == expected_train
    assert [os.path.relpath(item.impath, image_dir) for item in dataset.val] == expected_val
    random.seed(4)
    other = build(root, "Food101", num_shots=3, seed=4)
    assert relative(other, other.train_x) != relative(dataset, dataset.train_x)


def test_few_shot_cache_is_relative_json_and_survives_a_moved_root(root, tmp_path):
    FAKES["OxfordPets"].build(root)
    random.seed(1)
    first = build(root, "OxfordPets", num_shots=2, seed=1)
    cache = fewshot_cache_path(first.dataset_dir, 2, 1)
    with open(cache) as f:
        content = json.load(f)
    assert set(content) == {"train", "val", SPLIT_HASH_KEY} and not any(os.path.isabs(row[0]) for row in content["train"])
    moved = tmp_path / "elsewhere"
    shutil.move(str(root), str(moved))
    random.seed(12345)
    second = build(moved, "OxfordPets", num_shots=2, seed=1)
    assert relative(second, second.train_x) == relative(first, first.train_x)
    assert all(item.impath.startswith(str(moved)) for item in second.train_x)


def test_base_and_new_runs_share_one_cache(root):
    FAKES["EuroSAT"].build(root)
    random.seed(1)
    base = build(root, "EuroSAT", num_shots=2, subsample="base")
    random.seed(99)
    new = build(root, "EuroSAT", num_shots=2, subsample="new")
    all_classes = build(root, "EuroSAT", num_shots=2)
    assert relative(all_classes, all_classes.train_x) == relative(base, base.train_x) + relative(new, new.train_x)
    assert os.listdir(os.path.join(base.dataset_dir, "split_fewshot")) == ["shot_2-seed_1.json"]


def test_upstream_pickle_cache_is_never_unpickled(root):
    FAKES["DescribableTextures"].build(root)
    fewshot_dir = root / "dtd" / "split_fewshot"
    fewshot_dir.mkdir()
    (fewshot_dir / "shot_2-seed_1.pkl").write_bytes(b"not a pickle: loading this would raise")
    dataset = build(root, "DescribableTextures", num_shots=2)
    assert len(dataset.train_x) == 6 and (fewshot_dir / "shot_2-seed_1.json").is_file()


@pytest.mark.parametrize("name", ["Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers", "SUN397", "UCF101"])
def test_fallback_split_is_built_saved_and_reused(root, name):
    FAKES[name].build(root)
    cls = DATASET_REGISTRY.get(name)
    split_file = root / cls.dataset_dir / cls.split_file
    split_file.unlink()
    random.seed(1)
    first = build(root, name)
    assert split_file.is_file()
    n = len(FAKES[name].classnames)
    folder_rule = name in ("Caltech101", "OxfordFlowers")
    expected = (5 * n, 2 * n, 3 * n) if folder_rule else (6 * n, n, 3 * n)
    assert (len(first.train_x), len(first.val), len(first.test)) == expected
    assert first.classnames == list(FAKES[name].classnames)
    random.seed(2)
    split_file.unlink()
    rebuilt = build(root, name)
    assert relative(rebuilt, rebuilt.val) == relative(first, first.val), "fallback must not depend on the run seed"
    second = build(root, name)
    assert relative(second, second.train_x) == relative(first, first.train_x)


def test_stanford_cars_split_paths_are_relative_to_the_dataset_folder(all_root):
    dataset = build(all_root, "StanfordCars")
    assert dataset.relative_impath(dataset.train_x[0].impath) == "cars_train/00001.jpg"
    food = build(all_root, "Food101")
    assert food.relative_impath(food.train_x[0].impath) == "apple_pie/image_0000.jpg"


def test_imagenet_lists_are_cached_as_json_and_reused(root):
    FAKES["ImageNet"].build(root)
    first = build(root, "ImageNet", num_shots=2)
    with open(root / "imagenet" / "split_imagenet.json") as f:
        cached = json.load(f)
    assert set(cached) == {"train", "test"} and cached["test"][0][0] == "val/n01440764/n01440764_0.JPEG"
    with open(fewshot_cache_path(first.dataset_dir, 2, 1)) as f:
        assert set(json.load(f)) == {"train", SPLIT_HASH_KEY}
    (root / "imagenet" / "images" / "train" / "n01440764" / "late_addition.JPEG").write_bytes(b"x")
    second = build(root, "ImageNet")
    assert len(second.train_x) == 30 and first.val is first.test


def test_imagenet_flat_val_folder_is_named(root):
    FAKES["ImageNet"].build(root)
    val = root / "imagenet" / "images" / "val"
    shutil.rmtree(val)
    val.mkdir()
    (val / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"x")
    with pytest.raises(DatasetProblem, match="holds 1 image file.*one folder per wnid"):
        build(root, "ImageNet")


def test_missing_dataset_folder_names_folder_root_and_guide(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        build(tmp_path, "Caltech101")
    assert "'caltech-101'" in str(error.value) and str(tmp_path) in str(error.value)
    assert "DATASETS.md#caltech101" in str(error.value)


def test_malformed_split_json_names_the_file(root):
    FAKES["DescribableTextures"].build(root)
    split_file = root / "dtd" / "split_zhou_DescribableTextures.json"
    split_file.write_text('{"train": [')
    with pytest.raises(SplitFileError, match="split_zhou_DescribableTextures.json is not valid JSON"):
        build(root, "DescribableTextures")
    split_file.write_text(json.dumps({"train": [["banded/image_0000.jpg", "0", "banded"]], "val": [], "test": []}))
    with pytest.raises(SplitFileError, match=r"entry train\[0\]"):
        build(root, "DescribableTextures")
    split_file.write_text(json.dumps({"train": []}))
    with pytest.raises(SplitFileError, match="'train', 'val', 'test'"):
        build(root, "DescribableTextures")


def test_split_naming_a_missing_image_names_file_and_entry(root):
    FAKES["DescribableTextures"].build(root)
    (root / "dtd" / "images" / "blotchy" / "image_0008.jpg").unlink()
    with pytest.raises(MissingImagesError) as error:
        build(root, "DescribableTextures")
    message = str(error.value)
    assert "split_zhou_DescribableTextures.json" in message and "test[4]" in message
    assert "blotchy/image_0008.jpg" in message and "1 of 30" in message


def test_missing_fallback_sources_are_named_before_any_work(root):
    FAKES["OxfordFlowers"].build(root)
    (root / "oxford_flowers" / "split_zhou_OxfordFlowers.json").unlink()
    (root / "oxford_flowers" / "cat_to_name.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="cat_to_name.json.*DATASETS.md#oxfordflowers"):
        build(root, "OxfordFlowers")


def test_upstream_static_helpers_still_work(all_root):
    pets = DATASET_REGISTRY.get("OxfordPets")
    image_dir = os.path.join(all_root, "oxford_pets", "images")
    train, val, test = pets.read_split(os.path.join(all_root, "oxford_pets", "split_zhou_OxfordPets.json"), image_dir)
    assert (len(train), len(val), len(test)) == (15, 6, 9)
    base_train, = pets.subsample_classes(train, subsample="base")
    assert len(base_train) == 10
    dtd = DATASET_REGISTRY.get("DescribableTextures")
    assert len(dtd.read_and_split_data(os.path.join(all_root, "dtd", "images"))[0]) == 15
    classnames = DATASET_REGISTRY.get("ImageNet").read_classnames(os.path.join(all_root, "imagenet", "classnames.txt"))
    assert classnames["n01484850"] == "great white shark"


def test_every_dataset_config_names_a_registered_dataset():
    from dassl.config import get_cfg_default

    config_dir = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "datasets")
    names = {}
    for file_name in os.listdir(config_dir):
        cfg = get_cfg_default()
        cfg.merge_from_file(os.path.join(config_dir, file_name))
        names[file_name] = cfg.DATASET.NAME
    assert names["dtd.yaml"] == "DescribableTextures" and names["imagenetv2.yaml"] == "ImageNetV2"
    assert set(FAKES) | {"ImageFolderDataset"} <= set(names.values())
    import datasets
    from dassl.data.datasets import DATASET_REGISTRY

    datasets.import_all()
    assert set(names.values()) <= set(DATASET_REGISTRY.registered_names())


def test_every_dataset_points_at_an_existing_section_of_the_guide():
    guide = os.path.join(os.path.dirname(os.path.dirname(__file__)), "DATASETS.md")
    with open(guide) as f:
        headings = [line[3:].strip() for line in f if line.startswith("## ")]
    anchors = {"".join(c for c in h.lower().replace(" ", "-") if c.isalnum() or c == "-") for h in headings}
    for name in list(FAKES) + ["ImageFolderDataset"]:
        assert DATASET_REGISTRY.get(name).guide_anchor in anchors, name
