"""The few-shot cache (split_fewshot/shot_K-seed_S.json) belongs to the split it was drawn from:
when the split changes it is drawn again, never reused; an old file without the recorded
hash is reused only if it still fits the split."""
import json
import random

import datasets
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.split_files import SPLIT_HASH_KEY
from helpers.fake_benchmarks import dataset_cfg, make_image_folder, write_image

datasets.import_all()
FEWSHOT = ("my_set", "split_fewshot", "shot_2-seed_1.json")


def build(root):
    random.seed(1)
    return DATASET_REGISTRY.get("ImageFolderDataset")(dataset_cfg(root, "ImageFolderDataset", num_shots=2, folder="my_set"))


def test_datasets_md_advice_add_a_class_and_images_then_delete_the_split_file(tmp_path, capsys):
    make_image_folder(tmp_path)
    first = build(tmp_path)
    assert len(first.classnames) == 3
    make_image_folder(tmp_path, classes=("okapi",))
    for index in range(10, 20):
        write_image(str(tmp_path / "my_set" / "zebra" / f"img_{index}.png"))
    (tmp_path / "my_set" / "split_my_set.json").unlink()
    capsys.readouterr()
    second = build(tmp_path)
    assert "drawing the few-shot sample again" in capsys.readouterr().out
    assert second.classnames == ["okapi", "red panda", "tabby cat", "zebra"]
    assert len(second.train_x) == 8
    tested = {item.impath for item in second.test}
    assert not [item.impath for item in second.train_x if item.impath in tested], "no few-shot image is tested on"


def test_an_unchanged_split_reuses_the_sample(tmp_path):
    make_image_folder(tmp_path)
    first = build(tmp_path)
    cache = tmp_path.joinpath(*FEWSHOT)
    assert SPLIT_HASH_KEY in json.loads(cache.read_text())
    random.seed(99)
    again = DATASET_REGISTRY.get("ImageFolderDataset")(dataset_cfg(tmp_path, "ImageFolderDataset", num_shots=2,
                                                                   folder="my_set"))
    assert [item.impath for item in again.train_x] == [item.impath for item in first.train_x]
    assert cache.as_posix() in again.source_files[-1]


def test_old_cache_without_hash_is_reused_if_it_fits_and_redrawn_if_not(tmp_path, capsys):
    make_image_folder(tmp_path)
    first = build(tmp_path)
    cache = tmp_path.joinpath(*FEWSHOT)
    content = json.loads(cache.read_text())
    del content[SPLIT_HASH_KEY]
    cache.write_text(json.dumps(content))
    assert [item.impath for item in build(tmp_path).train_x] == [item.impath for item in first.train_x]

    test_image = first.test[0]
    content["train"][0] = [test_image.impath.split("my_set/")[1], test_image.label, test_image.classname]
    cache.write_text(json.dumps(content))
    capsys.readouterr()
    redrawn = build(tmp_path)
    out = capsys.readouterr().out
    assert "names images that are not in the current split's train/val lists" in out
    assert test_image.impath not in {item.impath for item in redrawn.train_x}
    assert SPLIT_HASH_KEY in json.loads(cache.read_text()), "the redrawn sample records its split"


def test_the_doctor_reports_a_few_shot_file_of_another_split(tmp_path, capsys):
    from helpers.tool_scripts import load_tool

    make_image_folder(tmp_path)
    build(tmp_path)
    doctor = load_tool("check_datasets")
    assert doctor.main(["--root", str(tmp_path), "--folder", "my_set"]) == 0
    assert "another split" not in capsys.readouterr().out
    make_image_folder(tmp_path, classes=("okapi",))
    (tmp_path / "my_set" / "split_my_set.json").unlink()
    assert doctor.main(["--root", str(tmp_path), "--folder", "my_set"]) == 0
    assert ("few-shot file(s) drawn from another split: shot_2-seed_1.json (the next run draws them again)"
            in capsys.readouterr().out)
