"""Reading TGP-T's per-image descriptions: file lookup, key normalisation and the errors that name the fix."""
import os
from types import SimpleNamespace

import pytest

from tests.helpers.toy_dataset import ToyDataset
from trainers.tgpt.captions import (
    MissingDescriptionError,
    find_caption_file,
    image_descriptions,
    leading_folder_names,
    normalise_key,
    read_caption_file,
)


def split_dataset(tmp_path, folder="imagenet", images="images"):
    """A stand-in with the attributes SplitJsonDataset exposes after locate()."""
    dataset_dir = tmp_path / folder
    (dataset_dir / images).mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(dataset_dir=str(dataset_dir), split_root=str(dataset_dir / images))


def test_authors_imagenet_keys_lose_the_dataset_and_image_folders(tmp_path):
    dataset = split_dataset(tmp_path)
    (tmp_path / "imagenet" / "captions.txt").write_text(
        "imagenet/images/train/n01/a.JPEG\tA fish in a net.\tn01\n"
        "train/n02/b.JPEG\tA bird on a branch.\n"
    )
    impaths = [str(tmp_path / "imagenet/images/train/n02/b.JPEG"), str(tmp_path / "imagenet/images/train/n01/a.JPEG")]
    assert image_descriptions(dataset, impaths, str(tmp_path)) == ["A bird on a branch.", "A fish in a net."]


def test_stanford_cars_bare_names_are_read_as_cars_train(tmp_path):
    dataset_dir = tmp_path / "stanford_cars"
    dataset_dir.mkdir()
    dataset = SimpleNamespace(dataset_dir=str(dataset_dir), split_root=str(dataset_dir))
    (dataset_dir / "descriptions.txt").write_text("00001.jpg\tA red coupe.\n")
    impath = str(dataset_dir / "cars_train" / "00001.jpg")
    assert image_descriptions(dataset, [impath], str(tmp_path), "StanfordCars") == ["A red coupe."]
    assert normalise_key("00001.jpg", ["stanford_cars"]) == "00001.jpg", "other datasets keep bare names"


def test_key_normalisation_rules():
    leading = leading_folder_names("/data/caltech-101", "/data/caltech-101/101_ObjectCategories")
    assert leading == ["caltech-101", "101_ObjectCategories"]
    assert normalise_key("caltech-101/101_ObjectCategories/ant/1.jpg", leading) == "ant/1.jpg"
    assert normalise_key("./ant\\1.jpg", leading) == "ant/1.jpg"
    assert normalise_key("101_ObjectCategories", leading) == "101_ObjectCategories", "a bare name is never emptied"


def test_captions_file_is_preferred_to_descriptions_file(tmp_path):
    (tmp_path / "descriptions.txt").write_text("a.jpg\tfrom descriptions\n")
    assert find_caption_file(str(tmp_path)).endswith("descriptions.txt")
    (tmp_path / "captions.txt").write_text("a.jpg\tfrom captions\n")
    assert find_caption_file(str(tmp_path)).endswith("captions.txt")


def test_missing_file_names_both_files_and_the_option(tmp_path):
    dataset = split_dataset(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        image_descriptions(dataset, [], str(tmp_path))
    message = str(error.value)
    assert os.path.join(dataset.dataset_dir, "captions.txt") in message
    assert os.path.join(dataset.dataset_dir, "descriptions.txt") in message
    assert "TRAINER.TGPT.CONTENT_LOSS False" in message


def test_training_image_without_description_is_named(tmp_path):
    dataset = split_dataset(tmp_path)
    (tmp_path / "imagenet" / "captions.txt").write_text("train/n01/a.JPEG\tA fish.\n")
    impaths = [str(tmp_path / "imagenet/images/train/n01/a.JPEG"), str(tmp_path / "imagenet/images/train/n03/c.JPEG")]
    with pytest.raises(MissingDescriptionError) as error:
        image_descriptions(dataset, impaths, str(tmp_path))
    message = str(error.value)
    assert "1 training image(s)" in message and "'train/n03/c.JPEG'" in message
    assert "captions.txt" in message and "TRAINER.TGPT.CONTENT_LOSS False" in message


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("a.jpg\tfine\nb.jpg has no tab\n")
    with pytest.raises(ValueError, match=r"captions.txt, line 2"):
        read_caption_file(str(path))


def test_plain_dassl_dataset_is_read_relative_to_its_folder(tmp_path):
    dataset = SimpleNamespace(dataset_dir=ToyDataset.dataset_dir)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "captions.txt").write_text("train/red/0.png\tA red square.\n")
    impath = str(tmp_path / "toy" / "train" / "red" / "0.png")
    assert image_descriptions(dataset, [impath], str(tmp_path)) == ["A red square."]
