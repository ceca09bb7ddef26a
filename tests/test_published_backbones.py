"""Published numbers name their backbone and stand only beside runs on it (issue #23 item 3)."""
import parse_test_res as ptr
from reporting.published import canonical_backbone, comparable_backbones, load_published, published_method
from tests.helpers.fake_logs import base2new_dir, eval_log, train_log, write_run


def test_every_published_entry_records_its_backbone():
    assert {entry["backbone"] for entry in load_published()["methods"].values()} == {"ViT-B/16"}


def test_open_clips_names_for_openais_weights_are_the_same_backbone():
    assert canonical_backbone("ViT-B-16/openai") == "ViT-B/16"
    assert canonical_backbone("ViT-L-14-336/openai") == "ViT-L/14@336px"
    assert canonical_backbone("RN50-quickgelu/openai") == "RN50"
    assert canonical_backbone("ViT-B-16/laion2b_s34b_b88k") == "ViT-B-16/laion2b_s34b_b88k"
    coop = published_method("CoOp")
    assert comparable_backbones(coop, ["ViT-B/16", "ViT-B-16/openai"])
    assert comparable_backbones(coop, [])  # logs that name no backbone are not counted against
    assert not comparable_backbones(coop, ["ViT-B/16", "ViT-B-16/laion2b_s34b_b88k"])
    assert not comparable_backbones(coop, ["ViT-B-16"])  # an open_clip file of that architecture


def write_seed(root, backbone, base, new):
    loading = f"Loading CLIP (backbone: {backbone}, from /weights/open_clip_pytorch_model.bin)\n"
    write_run(base2new_dir(root, "train_base", "dtd", "CoOp", "vit_b16_ctxv1", 1), loading + train_log(base))
    write_run(base2new_dir(root, "test_new", "dtd", "CoOp", "vit_b16_ctxv1", 1), loading + eval_log(new))


def test_paper_columns_only_beside_runs_on_the_papers_backbone(tmp_path, capsys):
    write_seed(tmp_path / "openai", "ViT-B/16", 80.0, 60.0)
    write_seed(tmp_path / "laion", "ViT-B-16/laion2b_s34b_b88k", 80.0, 60.0)
    assert ptr.main(["--base2new", str(tmp_path / "openai")]) == 0
    openai = capsys.readouterr().out
    assert "Base paper" in openai and "backbone ViT-B/16, config vit_b16_ctxv1" in openai
    assert ptr.main(["--base2new", str(tmp_path / "laion")]) == 0
    laion = capsys.readouterr().out
    assert "Base paper" not in laion and "Paper:" not in laion
    assert ("Paper numbers not shown: CoOp was measured on ViT-B/16, these runs used "
            "ViT-B-16/laion2b_s34b_b88k.") in laion
