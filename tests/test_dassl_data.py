"""Datasets, transforms, loaders: few-shot sampling, batch dicts, clear image errors."""
import random

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dassl.config import get_cfg_default
from dassl.data import DataManager, DatasetWrapper
from dassl.data.datasets import DatasetBase, Datum, build_dataset
from dassl.data.samplers import build_sampler
from dassl.data.transforms import build_transform
from dassl.utils.registry import RegistryKeyError
from tests.helpers.toy_dataset import SPLIT_SIZES


def items(labels):
    return [Datum(impath=f"/nowhere/{i}.png", label=label, classname=f"c{label}") for i, label in enumerate(labels)]


def test_datum_does_not_touch_the_disk_and_validates_types():
    datum = Datum(impath="/does/not/exist.jpg", label=3, classname="x")
    assert (datum.impath, datum.label, datum.domain, datum.classname) == ("/does/not/exist.jpg", 3, 0, "x")
    with pytest.raises(TypeError, match="label"):
        Datum(impath="a.jpg", label="3")


def test_dataset_base_class_list_comes_from_train_x():
    dataset = DatasetBase(train_x=items([2, 0, 2]), test=items([0]))
    assert dataset.num_classes == 3
    assert dataset.lab2cname == {0: "c0", 2: "c2"} and dataset.classnames == ["c0", "c2"]


def test_fewshot_sampling_uses_the_global_random_in_label_order():
    data = items([1, 0, 1, 1, 0, 2])
    dataset = DatasetBase(train_x=data)
    random.seed(5)
    sampled = dataset.generate_fewshot_dataset(data, num_shots=2)
    random.seed(5)
    expected = random.sample([data[0], data[2], data[3]], 2) + random.sample([data[1], data[4]], 2) + [data[5]]
    assert sampled == expected
    repeated = dataset.generate_fewshot_dataset(data, num_shots=2, repeat=True)
    assert [d.label for d in repeated] == [1, 1, 0, 0, 2, 2]
    train, val = dataset.generate_fewshot_dataset(data, data, num_shots=1)
    assert len(train) == len(val) == 3
    assert dataset.generate_fewshot_dataset(data, num_shots=-1) is data


def test_split_by_domain_keeps_first_appearance_order():
    data = [Datum("a", 0, domain=1), Datum("b", 0, domain=0), Datum("c", 1, domain=1)]
    assert list(DatasetBase.split_dataset_by_domain(data)) == [1, 0]


def test_transforms_follow_the_coop_pipelines():
    cfg = get_cfg_default()
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    train_names = [type(t).__name__ for t in build_transform(cfg, is_train=True).transforms]
    assert train_names == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    test_tfm = build_transform(cfg, is_train=False)
    assert [type(t).__name__ for t in test_tfm.transforms] == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    assert test_tfm(Image.new("RGB", (300, 250))).shape == (3, 224, 224)
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "sharpen")
    with pytest.raises(ValueError, match="sharpen"):
        build_transform(cfg)


def test_unknown_dataset_name_gets_a_hint():
    cfg = get_cfg_default()
    cfg.DATASET.NAME = "ToyDatset"
    with pytest.raises(RegistryKeyError, match='Did you mean "ToyDataset".*imported'):
        build_dataset(cfg)


def toy_cfg(root):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = "ToyDataset"
    cfg.INPUT.SIZE = (8, 8)
    cfg.INPUT.TRANSFORMS = ("normalize",)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    return cfg


def test_data_manager_builds_loaders_and_batch_dicts(tmp_path, capsys):
    cfg = toy_cfg(tmp_path)
    cfg.DATASET.NUM_SHOTS = 1
    dm = DataManager(cfg)
    assert "# train_x  3" in capsys.readouterr().out
    assert dm.num_classes == 3 and dm.lab2cname[0] == "red"
    assert dm.train_loader_x.drop_last is False, "3 items < batch 4: keep the partial batch"
    batch = next(iter(dm.test_loader))
    assert set(batch) == {"img", "label", "domain", "impath", "index"}
    assert batch["img"].shape == (12, 3, 8, 8) and batch["label"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len(dm.test_loader.dataset) == 3 * SPLIT_SIZES["test"]


def test_corrupt_image_error_names_the_file_from_a_worker(tmp_path):
    broken = tmp_path / "broken.png"
    Image.new("RGB", (8, 8)).save(broken)
    broken.write_bytes(broken.read_bytes()[:30])
    cfg = toy_cfg(tmp_path)
    wrapper = DatasetWrapper(cfg, [Datum(str(broken), 0)], transform=None)
    with pytest.raises(OSError, match=r"broken\.png.*corrupt or truncated"):
        wrapper[0]
    batches = iter(DataLoader(wrapper, batch_size=1, num_workers=1))
    with pytest.raises(OSError, match=r"broken\.png"):
        next(batches)
    batches._shutdown_workers()  # otherwise the idle worker is joined at GC time, with a 5 s timeout


def test_sampler_names():
    assert list(build_sampler("SequentialSampler", data_source=[1, 2, 3])) == [0, 1, 2]
    torch.manual_seed(0)
    assert sorted(build_sampler("RandomSampler", data_source=[1, 2, 3])) == [0, 1, 2]
    with pytest.raises(ValueError, match="SequentialSampler"):
        build_sampler("RandomDomainSamplr", data_source=[1])


def augmented_epochs(cfg, data_source, n_epochs=3):
    """Every epoch's augmented batches of `data_source`, seeded, as one tensor."""
    torch.manual_seed(0)
    wrapper = DatasetWrapper(cfg, data_source, transform=build_transform(cfg, is_train=True), is_train=True)
    return torch.stack([wrapper[i]["img"] for _ in range(n_epochs) for i in range(len(wrapper))]), wrapper


def test_decoded_images_are_kept_within_the_budget_and_give_the_same_batches(tmp_path):
    paths = []
    for i, colour in enumerate(["red", "green", "blue"]):
        paths.append(tmp_path / f"{i}.png")
        Image.effect_noise((16, 16), 40 + 20 * i).convert("RGB").save(paths[-1])
    data_source = [Datum(str(path), i) for i, path in enumerate(paths)]
    cfg = toy_cfg(tmp_path)
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    plain, plain_wrapper = augmented_epochs(cfg, data_source)
    assert plain_wrapper.decoded.images == {}, "DECODED_CACHE_MB 0 (the default) keeps nothing"
    cfg.DATALOADER.DECODED_CACHE_MB = 2 * 16 * 16 * 3 / 2**20  # room for two of the three images
    cached, wrapper = augmented_epochs(cfg, data_source)
    assert torch.equal(cached, plain)
    assert list(wrapper.decoded.images) == [str(paths[0]), str(paths[1])]
    first = wrapper.decoded.read(str(paths[0]))
    first.putpixel((0, 0), (0, 0, 0))
    assert wrapper.decoded.read(str(paths[0])).getpixel((0, 0)) != (0, 0, 0), "each read is a copy"
