"""Smoke runs of the mini-world tools: the data build (from shipped images) and MiniCLIP pretraining."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clip
from datasets.mini_world import ensure_extracted, extract_all, read_pretrain_list
from tests.helpers.tool_scripts import load_tool

CLIPART_CLASSES = ("bird", "star")
FASHION_COUNTS = {"pretrain": 1, "train": 2, "val": 1, "test": 1}


@pytest.fixture(scope="module")
def shipped_root(tmp_path_factory):
    return extract_all(tmp_path_factory.mktemp("shipped"))


def all_images(folder):
    """Every split and pretraining image of an extracted dataset: [(path, classname)], sorted."""
    split = json.loads(next(folder.glob("split_zhou_*.json")).read_text())
    items = [(folder / "images" / p, c) for entries in split.values() for p, _, c in entries]
    items += [(Path(p), c) for p, _, c in read_pretrain_list(folder)]
    return sorted(items)


def fashion_source_from_shipped(shipped_root, builder, target):
    """Gzipped IDX files (as Debian ships them) holding a few shipped Fashion-MNIST images per class."""
    per_class = {"train": FASHION_COUNTS["pretrain"] + FASHION_COUNTS["train"] + FASHION_COUNTS["val"],
                 "t10k": FASHION_COUNTS["test"]}
    images = {"train": [], "t10k": []}
    labels = {"train": [], "t10k": []}
    taken = {}
    for path, classname in all_images(shipped_root / "mini_fashion_mnist"):
        part = "t10k" if path.name.startswith("t10k") else "train"
        if taken.get((part, classname), 0) < per_class[part]:
            taken[(part, classname)] = taken.get((part, classname), 0) + 1
            images[part].append(np.asarray(Image.open(path).convert("L")))
            labels[part].append(builder.FASHION_CLASSES.index(classname))
    target.mkdir()
    for part, (images_file, labels_file) in builder.FASHION_FILES.items():
        builder.write_idx(target / images_file, np.stack(images[part]))
        builder.write_idx(target / labels_file, np.array(labels[part]))
    return target


def clipart_source_from_shipped(shipped_root, builder, target):
    """An openclipart-like folder tree of shipped clip-art PNGs (titles kept in their metadata)."""
    for path, classname in all_images(shipped_root / "mini_clipart"):
        if classname in CLIPART_CLASSES:
            folder = target / builder.CLIPART_CLASSES[classname][0].removesuffix("/**")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / path.name)
    return target


def test_build_from_shipped_images_is_reproducible_and_gives_the_upstream_layout(shipped_root, tmp_path):
    builder = load_tool("build_mini_world")
    fashion = fashion_source_from_shipped(shipped_root, builder, tmp_path / "fashion")
    clipart = clipart_source_from_shipped(shipped_root, builder, tmp_path / "png")
    counts = [str(FASHION_COUNTS[k]) for k in ("pretrain", "train", "val", "test")]
    for out in ("out1", "out2"):
        builder.main(["build", "--fashion-source", str(fashion), "--clipart-source", str(clipart),
                      "--out", str(tmp_path / out), "--fashion-counts", *counts,
                      "--clipart-classes", *CLIPART_CLASSES])
    for archive in ("mini_fashion_mnist.tar.xz", "mini_clipart.tar.xz"):
        assert (tmp_path / "out1" / archive).read_bytes() == (tmp_path / "out2" / archive).read_bytes()

    root = tmp_path / "root"
    fashion_dir = ensure_extracted("mini_fashion_mnist", root, shipped_dir=tmp_path / "out1")
    split = json.loads((fashion_dir / "split_zhou_MiniFashionMNIST.json").read_text())
    assert {k: len(v) for k, v in split.items()} == {k: 10 * FASHION_COUNTS[k] for k in ("train", "val", "test")}
    assert len(read_pretrain_list(fashion_dir)) == 10 * FASHION_COUNTS["pretrain"]
    assert Image.open(fashion_dir / "images" / split["test"][0][0]).size == (32, 32)

    clipart_dir = ensure_extracted("mini_clipart", root, shipped_dir=tmp_path / "out1")
    split = json.loads((clipart_dir / "split_zhou_MiniClipart.json").read_text())
    assert sorted({(label, name) for _, label, name in split["test"]}) == [(0, "bird"), (1, "star")]
    split_names = {p for entries in split.values() for p, _, _ in entries}
    assert split_names.isdisjoint(Path(p).relative_to(clipart_dir / "pretrain").as_posix()
                                  for p, _, _ in read_pretrain_list(clipart_dir))
    sentences = [line.split("\t")[1] for line in (clipart_dir / "captions.txt").read_text().splitlines()]
    assert len(sentences) == len(split_names)
    titled = [s for s in sentences if s.startswith('A clip-art image titled "')]
    assert len(titled) > 0.9 * len(sentences)  # titles travel in the shipped PNGs' metadata


def test_build_names_the_missing_source_and_the_package_to_install(tmp_path):
    builder = load_tool("build_mini_world")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        builder.main(["build", "--fashion-source", str(tmp_path), "--out", str(tmp_path / "out"),
                      "--datasets", "mini_fashion_mnist"])
    with pytest.raises(FileNotFoundError, match="openclipart-png"):
        builder.main(["build", "--clipart-source", str(tmp_path), "--out", str(tmp_path / "out"),
                      "--datasets", "mini_clipart"])


@pytest.mark.parametrize("tool, argv", [
    ("build_mini_world", ["build", "--clipart-source", "{tmp}", "--out", "{tmp}/out", "--datasets", "mini_clipart"]),
    ("pretrain_miniclip", ["--root", "{tmp}/root", "--clipart-source", "{tmp}/none", "--steps", "1", "--no-eval",
                           "--output", "{tmp}/mini.pt"]),  # never the shipped checkpoint, whatever happens
])
def test_a_missing_source_is_one_line_at_the_command_line(tmp_path, monkeypatch, tool, argv):
    module = load_tool(tool)
    monkeypatch.setattr(sys, "argv", [f"{tool}.py", *(arg.format(tmp=tmp_path) for arg in argv)])
    with pytest.raises(SystemExit) as exit_info:
        module.cli()
    message = str(exit_info.value.code)
    assert message.startswith(f"{tool}.py: error: clip-art folder {tmp_path}") and "\n" not in message
    assert "install the Debian package openclipart-png or pass --clipart-source" in message
    assert not (tmp_path / "mini.pt").exists()


def test_only_the_shipped_recipe_may_overwrite_the_shipped_checkpoint(capsys):
    pretrain = load_tool("pretrain_miniclip")
    with pytest.raises(SystemExit):
        pretrain.parse_args(["--steps", "3"])
    assert "only the shipped recipe may overwrite the shipped clip/pretrained/miniclip.pt" in capsys.readouterr().err
    assert pretrain.parse_args([]).output == pretrain.DEFAULT_OUTPUT


def test_captions_are_measured_facts_of_the_image():
    builder = load_tool("build_mini_world")
    red_bar = Image.new("RGB", (32, 32), (255, 255, 255))
    red_bar.paste((220, 20, 20), (2, 12, 30, 20))
    sentence = builder.describe_clipart(red_bar, "Warning Bar", "warning_bar_01")
    assert sentence.startswith('A clip-art image titled "Warning Bar"')
    assert "mostly in red" in sentence and "a wide shape" in sentence
    dark_tall = Image.new("L", (32, 32), 0)
    dark_tall.paste(60, (12, 2, 20, 30))
    sentence = builder.describe_fashion(dark_tall)
    assert "dark grey" in sentence and "a tall shape" in sentence and "left-right symmetric" in sentence


def small_clipart_source(shipped_root, folder):
    """An openclipart-like folder: a few shipped pretraining drawings (as birds) plus one split (test) drawing
    at its source path. Returns the folder and how many drawings may be pretrained on."""
    clipart_dir = shipped_root / "mini_clipart"
    allowed = read_pretrain_list(clipart_dir)[::60]
    for path, _, _ in allowed:
        target = folder / "animals/birds" / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    split = json.loads(next(clipart_dir.glob("split_zhou_*.json")).read_text())
    held_out = clipart_dir / "images" / split["test"][0][0]
    with Image.open(held_out) as image:
        target = folder / image.info["Source"]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(held_out, target)
    return folder, len(allowed)


def test_pretraining_pool_excludes_split_drawings(shipped_root, tmp_path):
    pretrain = load_tool("pretrain_miniclip")
    source, allowed = small_clipart_source(shipped_root, tmp_path / "clipart")
    pool = pretrain.clipart_pool(source, shipped_root / "mini_clipart")
    assert len(pool) == allowed
    assert {concept for _, concept, _ in pool} == {"bird"}  # the folder of MiniClipart's class "bird"


def test_pretraining_smoke_run_saves_a_checkpoint_the_public_loader_rebuilds(shipped_root, tmp_path):
    pretrain = load_tool("pretrain_miniclip")
    output = tmp_path / "mini.pt"
    source, _ = small_clipart_source(shipped_root, tmp_path / "clipart")
    pretrain.main(["--root", str(shipped_root), "--clipart-source", str(source), "--steps", "2",
                   "--batch-size", "8", "--threads", "1", "--output", str(output), "--no-eval"])
    model, preprocess = clip.load(str(output))
    for key, value in pretrain.ARCHITECTURE.items():
        if key == "vision_layers":
            assert len(model.visual.transformer.resblocks) == value
        elif key == "transformer_layers":
            assert len(model.transformer.resblocks) == value
    assert model.visual.input_resolution == pretrain.ARCHITECTURE["image_resolution"]
    assert model.token_embedding.weight.shape == (49408, pretrain.ARCHITECTURE["transformer_width"])
    state = torch.load(output, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    scratch = pretrain.build_miniclip(seed=0)
    assert not torch.equal(state["visual.proj"].float(), scratch.visual.proj.detach().half().float())
    image = preprocess(Image.new("RGB", (32, 32), (255, 0, 0))).unsqueeze(0)
    assert model.encode_image(image).shape == (1, pretrain.ARCHITECTURE["embed_dim"])
