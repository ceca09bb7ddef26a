"""Config: default tree, extension hooks, strict merging with clear errors."""
import pytest
from yacs.config import CfgNode as CN

from dassl.config import extensions
from dassl.config import (
    ConfigError,
    apply_cfg_extensions,
    get_cfg_default,
    key_source,
    merge_from_file,
    merge_from_list,
    register_cfg_extension,
)


def test_default_tree_has_upstream_and_toolkit_keys():
    cfg = get_cfg_default()
    assert cfg.OPTIM.NAME == "adam" and cfg.OPTIM.LR == 0.0003 and cfg.OPTIM.WARMUP_RECOUNT is True
    assert cfg.INPUT.RRCROP_SCALE == (0.08, 1.0) and cfg.TEST.FINAL_MODEL == "last_step"
    assert cfg.MODEL.BACKBONE.PATH == "" and cfg.DATASET.SUBSAMPLE_CLASSES == "all"
    assert cfg.DATALOADER.TEST.SAMPLER == "SequentialSampler" and cfg.SEED == -1
    assert get_cfg_default() is not cfg


def test_unknown_key_in_yaml_names_key_file_and_closest_key(tmp_path):
    path = tmp_path / "trainer.yaml"
    path.write_text("OPTIM:\n  NAME: sgd\n  MAX_EPOCHS: 5\n")
    with pytest.raises(ConfigError) as info:
        merge_from_file(get_cfg_default(), str(path))
    message = str(info.value)
    assert '"OPTIM.MAX_EPOCHS"' in message and str(path) in message and 'Did you mean "OPTIM.MAX_EPOCH"' in message


def test_type_mismatch_names_key_source_and_expected_type(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("OPTIM:\n  MAX_EPOCH: ten\n")
    with pytest.raises(ConfigError, match=r'"OPTIM.MAX_EPOCH" from .*bad.yaml: expected int'):
        merge_from_file(get_cfg_default(), str(path))
    with pytest.raises(ConfigError, match=r'"TEST.NO_TEST" from the command line: expected bool'):
        merge_from_list(get_cfg_default(), ["TEST.NO_TEST", "'yes'"])


def test_missing_file_and_python_configs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not found.*nope.yaml"):
        merge_from_file(get_cfg_default(), str(tmp_path / "nope.yaml"))
    script = tmp_path / "cfg.py"
    script.write_text("cfg = {}\n")
    with pytest.raises(ConfigError, match="yaml"):
        merge_from_file(get_cfg_default(), str(script))


def test_values_are_literal_decoded_and_sources_recorded(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("INPUT:\n  SIZE: (8, 8)\nOPTIM:\n  LR: 1\n")
    cfg = merge_from_file(get_cfg_default(), str(path))
    merge_from_list(cfg, ["OPTIM.MAX_EPOCH", "3", "INPUT.TRANSFORMS", "['normalize']", "MODEL.BACKBONE.NAME", "ViT-B/16"])
    assert cfg.INPUT.SIZE == (8, 8) and cfg.OPTIM.LR == 1.0 and isinstance(cfg.OPTIM.LR, float)
    assert cfg.OPTIM.MAX_EPOCH == 3 and cfg.INPUT.TRANSFORMS == ("normalize",)
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/16"
    assert key_source(cfg, "OPTIM.LR") == str(path) and key_source(cfg, "OPTIM.MAX_EPOCH") == "the command line"
    assert key_source(cfg, "SEED") is None
    with pytest.raises(ConfigError, match="pairs"):
        merge_from_list(cfg, ["OPTIM.LR"])


def test_a_base_file_is_merged_first_and_its_variant_overrides_it(tmp_path):
    (tmp_path / "mini.yaml").write_text("OPTIM:\n  LR: 0.01\n  MAX_EPOCH: 20\n")
    variant = tmp_path / "mini_ep5.yaml"
    variant.write_text("_BASE_: mini.yaml\nOPTIM:\n  MAX_EPOCH: 5\n")
    cfg = merge_from_file(get_cfg_default(), str(variant))
    assert cfg.OPTIM.LR == 0.01 and cfg.OPTIM.MAX_EPOCH == 5
    assert key_source(cfg, "OPTIM.LR") == str(tmp_path / "mini.yaml") and key_source(cfg, "OPTIM.MAX_EPOCH") == str(variant)


@pytest.mark.parametrize("base, problem", [
    ("nope.yaml", "does not exist"),
    ("loop.yaml", "already its own base"),
    (3, "must name a .yaml file"),
])
def test_a_bad_base_is_one_clear_error(tmp_path, base, problem):
    (tmp_path / "loop.yaml").write_text("_BASE_: variant.yaml\n")
    variant = tmp_path / "variant.yaml"
    variant.write_text(f"_BASE_: {base}\n")
    with pytest.raises(ConfigError, match=f"_BASE_ in .*: .*{problem}|_BASE_ in .*{problem}"):
        merge_from_file(get_cfg_default(), str(variant))


def test_frozen_config_cannot_be_merged():
    cfg = get_cfg_default()
    cfg.freeze()
    with pytest.raises(ConfigError, match="frozen"):
        merge_from_list(cfg, ["SEED", "1"])


def test_registered_extension_adds_a_node_that_files_can_then_set(tmp_path, monkeypatch):
    monkeypatch.setattr(extensions, "_EXTENSIONS", list(extensions._EXTENSIONS))  # later runs never see the toy node

    @register_cfg_extension
    def add_toy_node(cfg):
        cfg.TRAINER.TOYMETHOD = CN()
        cfg.TRAINER.TOYMETHOD.N_CTX = 16

    cfg = get_cfg_default()
    with pytest.raises(ConfigError, match="trainer module that registers them"):
        merge_from_list(cfg, ["TRAINER.TOYMETHOD.N_CTX", "4"])
    merge_from_list(apply_cfg_extensions(cfg), ["TRAINER.TOYMETHOD.N_CTX", "4"])
    assert cfg.TRAINER.TOYMETHOD.N_CTX == 4
