"""The on-disk cache of frozen image features for evaluation: same results, images encoded once per sweep."""
import json
import os

import pytest
import torch

import train
from dassl.data.dataset_wrapper import DatasetWrapper
from dassl.engine import build_trainer
from dassl.utils import set_random_seed
from tests.helpers.tiny_clip import make_tiny_clip, save_openai_checkpoint
from tests.helpers.trainer_runs import base2new_argv, write_colour_images, write_tiny_clip_checkpoint
from trainers.common.feature_cache import FeatureCache, feature_cache_dir, key_digest, split_key

TRAINERS = {
    "ZeroshotCLIP": ("CoOp/vit_b16", ["TRAINER.COOP.PREC", "fp32"]),
    "CoOp": ("CoOp/vit_b16_ep50", ["TRAINER.COOP.PREC", "fp32"]),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "CoCoOp": ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32"]),
    "TextRefiner": ("TextRefiner/vit_b16_ep10_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "DPT": (
        "DPT/vit_b16",
        ["TRAINER.COOP.PREC", "fp32", "TRAINER.VPT.N_CTX", "2", "TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT", "2",
         "TRAINER.SELECTED_COVPT.CPN", "2", "TRAINER.DPT.N_KEY_TOKENS", "3"],
    ),
}
NEEDS_IMAGES_FOR_A_PROMPTED_PASS = {"DPT"}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")), per_class=6)
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")



def built_trainer(assets, output_dir, trainer, cache_dir, opts=(), clip_path=None):
    root, default_clip = assets
    config, trainer_opts = TRAINERS[trainer]
    opts = [*trainer_opts, "TEST.FEATURE_CACHE_DIR", str(cache_dir), "DATALOADER.TEST.BATCH_SIZE", "4", *opts]
    argv = base2new_argv(trainer, config, root, clip_path or default_clip, output_dir, "new", opts, model_dir=output_dir)
    train.import_plugins(train.PLUGIN_FOLDERS, [])
    set_random_seed(1)
    return build_trainer(train.setup_cfg(train.build_parser().parse_args(argv)))


class Counter:
    """Counts calls of the frozen image tower and image decodes."""

    def __init__(self, monkeypatch, trainer):
        self.tower_calls = self.images_read = 0
        visual = trainer.feature_server.clip_model.visual
        forward, getitem = visual.forward, DatasetWrapper.__getitem__

        def counted_forward(*args, **kwargs):
            self.tower_calls += 1
            return forward(*args, **kwargs)

        def counted_getitem(wrapper, index):
            self.images_read += 1
            return getitem(wrapper, index)

        monkeypatch.setattr(visual, "forward", counted_forward)
        monkeypatch.setattr(DatasetWrapper, "__getitem__", counted_getitem)


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_cached_evaluation_equals_uncached_and_later_runs_read_the_disk(assets, tmp_path, monkeypatch, name):
    cache_dir = tmp_path / "cache"
    reference = built_trainer(assets, tmp_path / "plain", name, cache_dir, ["TEST.FEATURE_CACHE", "False"])
    reference.test()
    assert not cache_dir.exists()

    first = built_trainer(assets, tmp_path / "first", name, cache_dir)
    counter = Counter(monkeypatch, first)
    first.test()
    n_test = len(first.test_loader.dataset)
    passes_over_images = 2 if name in NEEDS_IMAGES_FOR_A_PROMPTED_PASS else 1
    assert first.last_test_results == reference.last_test_results
    assert counter.tower_calls == len(first.test_loader) and counter.images_read == passes_over_images * n_test
    assert len(list(cache_dir.glob("*.pt"))) == 1

    second = built_trainer(assets, tmp_path / "second", name, cache_dir)
    counter = Counter(monkeypatch, second)
    second.test()
    second.test()
    assert second.last_test_results == reference.last_test_results
    assert counter.tower_calls == 0
    assert counter.images_read == (2 * n_test if name in NEEDS_IMAGES_FOR_A_PROMPTED_PASS else 0)


def test_cached_logits_equal_uncached_logits_exactly(assets, tmp_path):
    trainer = built_trainer(assets, tmp_path / "run", "CoCoOp", tmp_path / "cache")
    loader = trainer.test_loader
    features = trainer.feature_server.split_features(loader, "test")
    served = [trainer.model_inference(batch) for batch, _ in trainer.evaluation_batches(loader, "test")]
    with torch.no_grad():
        plain = [trainer.model_inference(batch["img"]) for batch in loader]
    assert features.shape == (len(loader.dataset), trainer.custom_clip.clip_model.visual.output_dim)
    assert torch.equal(torch.cat(served), torch.cat(plain))


def test_key_follows_transform_precision_split_and_checkpoint(assets, tmp_path):
    base = built_trainer(assets, tmp_path / "a", "CoOp", tmp_path / "cache")
    key = split_key(base.cfg, "test", base.test_loader, base.precision)
    bilinear = built_trainer(assets, tmp_path / "b", "CoOp", tmp_path / "cache", ["INPUT.INTERPOLATION", "bilinear"])
    amp = built_trainer(assets, tmp_path / "c", "CoOp", tmp_path / "cache", ["TRAINER.COOP.PREC", "amp"])
    other_clip = save_openai_checkpoint(make_tiny_clip(embed_dim=32, width=64, seed=5), tmp_path / "other.pt")
    retrained = built_trainer(assets, tmp_path / "d", "CoOp", tmp_path / "cache", clip_path=other_clip)
    assert "bilinear" in split_key(bilinear.cfg, "test", bilinear.test_loader, bilinear.precision)["transform"]
    digests = {
        key_digest(key),
        key_digest(split_key(base.cfg, "val", base.test_loader, base.precision)),
        key_digest(split_key(bilinear.cfg, "test", bilinear.test_loader, bilinear.precision)),
        key_digest(split_key(amp.cfg, "test", amp.test_loader, amp.precision)),
        key_digest(split_key(retrained.cfg, "test", retrained.test_loader, retrained.precision)),
    }
    assert len(digests) == 5
    assert key_digest(split_key(base.cfg, "test", base.test_loader, base.precision)) == key_digest(key)


def test_files_are_plain_tensors_with_readable_keys_and_bad_files_are_ignored(tmp_path):
    cache = FeatureCache(str(tmp_path))
    key = {"n_images": 3, "split": "test"}
    assert cache.load(key) is None
    features = torch.randn(3, 8)
    path = cache.save(key, features)
    assert torch.equal(torch.load(path, weights_only=True), features) and torch.equal(cache.load(key), features)
    assert json.loads((tmp_path / (key_digest(key) + ".json")).read_text())["key"] == key
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    with open(path, "wb") as handle:
        handle.write(b"truncated")
    assert cache.load(key) is None
    assert cache.load({"n_images": 4, "split": "test"}) is None


def test_default_folder_is_shared_and_overridable(assets, tmp_path, monkeypatch):
    trainer = built_trainer(assets, tmp_path / "run", "CoOp", "")
    monkeypatch.setenv("CLIP_PROMPT_TOOLKIT_CACHE", str(tmp_path / "shared"))
    assert feature_cache_dir(trainer.cfg) == str(tmp_path / "shared" / "features")
    monkeypatch.delenv("CLIP_PROMPT_TOOLKIT_CACHE")
    assert feature_cache_dir(trainer.cfg) == os.path.expanduser("~/.cache/clip_prompt_toolkit/features")


def test_a_tensor_copied_from_another_split_is_not_used_and_is_rewritten(tmp_path, capsys):
    cache = FeatureCache(str(tmp_path))
    test_key, val_key = {"n_images": 3, "split": "test"}, {"n_images": 3, "split": "val"}
    test_path, val_path = cache.save(test_key, torch.randn(3, 8)), cache.save(val_key, torch.randn(3, 8))
    val_record = tmp_path / (key_digest(val_key) + ".json")
    with open(test_path, "rb") as source, open(val_path, "wb") as target:
        target.write(source.read())
    assert cache.load(val_key) is None
    assert "it is not the tensor its record was written with" in capsys.readouterr().out
    val_record.write_text((tmp_path / (key_digest(test_key) + ".json")).read_text())
    assert cache.load(val_key) is None and "its record holds another key" in capsys.readouterr().out
    fresh = torch.randn(3, 8)
    cache.save(val_key, fresh)
    assert torch.equal(cache.load(val_key), fresh)


def test_images_replaced_in_place_change_the_key(assets, tmp_path):
    trainer = built_trainer(assets, tmp_path / "run", "CoOp", tmp_path / "cache")
    key = split_key(trainer.cfg, "test", trainer.test_loader, trainer.precision)
    image = trainer.test_loader.dataset.data_source[0].impath
    stat = os.stat(image)
    with open(image, "rb") as handle:
        content = handle.read()
    with open(image, "wb") as handle:
        handle.write(content)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    replaced = split_key(trainer.cfg, "test", trainer.test_loader, trainer.precision)
    assert replaced["images_sha256"] != key["images_sha256"] and key_digest(replaced) != key_digest(key)
    assert [name for name, value in key.items() if replaced[name] != value] == ["images_sha256"]
