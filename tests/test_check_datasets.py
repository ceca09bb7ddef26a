"""The dataset doctor on complete trees and on trees with one fault each."""
import importlib.util
import os

import pytest

from helpers.fake_benchmarks import FAKES, make_all, make_image_folder

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "check_datasets.py")


def load_doctor():
    spec = importlib.util.spec_from_file_location("check_datasets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


doctor = load_doctor()


def status_of(line):
    return "NOT FOUND" if line.startswith("NOT FOUND") else line.split()[0]


def lines_by_name(capsys, root, *args):
    code = doctor.main(["--root", str(root), *args])
    out = capsys.readouterr().out.splitlines()
    by_name = {}
    for line in out:
        status = status_of(line)
        rest = line[len(status):].split()
        if status in ("OK", "PROBLEM", "NOT FOUND") and rest:
            by_name[rest[0]] = (status, line)
    return code, by_name, out


@pytest.fixture
def tree(tmp_path):
    make_all(tmp_path)
    make_image_folder(tmp_path)
    return tmp_path


def test_complete_tree_passes_and_writes_nothing(tree, capsys):
    (tree / "dtd" / "descriptions.txt").write_text("banded/image_0000.jpg\tA banded texture.\n")
    before = sorted(str(path) for path in tree.rglob("*"))
    code, by_name, _ = lines_by_name(capsys, tree, "--dataset", *FAKES, "--folder", "my_set")
    assert code == 0
    assert {status for status, _ in by_name.values()} == {"OK"} and len(by_name) == len(FAKES) + 1
    assert "5 classes, train 25 / val 10 / test 15" in by_name["Caltech101"][1]
    assert "2 classes, test 4" in by_name["ImageNetA"][1]
    assert "captions: descriptions.txt" in by_name["DescribableTextures"][1]
    assert "captions: absent" in by_name["Food101"][1]
    assert sorted(str(path) for path in tree.rglob("*")) == before


def test_missing_split_file(tree, capsys):
    (tree / "dtd" / "split_zhou_DescribableTextures.json").unlink()
    code, by_name, _ = lines_by_name(capsys, tree)
    assert code == 1
    status, line = by_name["DescribableTextures"]
    assert status == "PROBLEM" and "split_zhou_DescribableTextures.json not found" in line
    assert "DATASETS.md#describabletextures" in line
    assert by_name["Food101"][0] == "OK"


def test_split_naming_a_missing_image(tree, capsys):
    (tree / "sun397" / "SUN397" / "a" / "apse" / "indoor" / "sun_10003.jpg").unlink()
    code, by_name, _ = lines_by_name(capsys, tree, "--dataset", "sun397")
    assert code == 1 and "a/apse/indoor/sun_10003.jpg" in by_name["SUN397"][1]


def test_imagenet_without_classnames(tree, capsys):
    (tree / "imagenet" / "classnames.txt").unlink()
    code, by_name, _ = lines_by_name(capsys, tree, "--dataset", "ImageNet")
    assert code == 1 and "missing classnames.txt" in by_name["ImageNet"][1]


def test_empty_class_folder(tree, capsys):
    (tree / "imagenet" / "images" / "val" / "n01443537").mkdir(exist_ok=True)
    for image in (tree / "imagenet" / "images" / "val" / "n01443537").iterdir():
        image.unlink()
    (tree / "my_set" / "okapi").mkdir()
    code, by_name, _ = lines_by_name(capsys, tree, "--dataset", "imagenet", "--folder", "my_set")
    assert code == 1
    assert "empty class folder(s)" in by_name["ImageNet"][1] and "n01443537" in by_name["ImageNet"][1]
    assert "okapi" in by_name["ImageFolderDataset:my_set"][1]


def test_absent_datasets_fail_only_when_asked_for(tmp_path, capsys):
    FAKES["EuroSAT"].build(tmp_path)
    code, by_name, _ = lines_by_name(capsys, tmp_path)
    assert code == 0 and by_name["EuroSAT"][0] == "OK" and by_name["UCF101"][0] == "NOT FOUND"
    assert "DATASETS.md#ucf101" in by_name["UCF101"][1]
    code, by_name, _ = lines_by_name(capsys, tmp_path, "--dataset", "eurosat", "ucf101")
    assert code == 1 and by_name["UCF101"][0] == "NOT FOUND"


def test_empty_root_and_unknown_names(tmp_path, capsys):
    code, _, out = lines_by_name(capsys, tmp_path)
    assert code == 1 and "No dataset found" in out[-1]
    with pytest.raises(SystemExit, match='Did you mean "eurosat"'):
        doctor.main(["--root", str(tmp_path), "--dataset", "eurosatt"])
