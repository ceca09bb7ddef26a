"""A run folder is reused only by the run that wrote it (run.json): a finished folder of the
same run returns its stored result, any other run (trainer, seed, class half, LR, model
folder) is refused with one line naming what differs, and --restart starts afresh.

CoOp trains for real (tiny CLIP, colour image folder) through `train.main`.
"""
import json
import os

import pytest

import train
from dassl.engine.run_fingerprint import RunFolderMismatchError, differences, flat_config, run_folder_state
from dassl.utils import is_run_done
from tests.helpers.trainer_runs import base2new_argv, killed_after, write_colour_images, write_tiny_clip_checkpoint

RUN_OPTS = [
    "TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CTX_INIT", "",
    "OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "0", "TRAIN.CHECKPOINT_FREQ", "1",
    "DATASET.NUM_SHOTS", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "2", "OPTIM.LR", "0.002",
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")))
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")


def run(assets, out, phase="base", opts=(), trainer="CoOp", flags=(), model_dir=None, load_epoch=None):
    root, clip_path = assets
    argv = base2new_argv(trainer, f"{trainer}/vit_b16_ep50" if trainer == "CoOp" else "KgCoOp/vit_b16_ep100_ctxv1",
                         root, clip_path, out, phase, [*RUN_OPTS, *opts], model_dir=model_dir, load_epoch=load_epoch)
    return train.main([*flags, *argv])


@pytest.fixture(scope="module")
def finished_base(assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    return out, run(assets, out)


def refusal(assets, out, **kwargs):
    with pytest.raises(RunFolderMismatchError) as error:
        run(assets, out, **kwargs)
    message = str(error.value)
    assert "\n" not in message and "--output-dir" in message and "--restart" in message
    return message


def test_a_finished_base_folder_is_not_reused_for_the_new_classes(assets, finished_base):
    out, _ = finished_base
    log_before = (out / "log.txt").read_text()
    message = refusal(assets, out, opts=("DATASET.SUBSAMPLE_CLASSES", "new"))
    assert 'DATASET.SUBSAMPLE_CLASSES "base" -> "new"' in message
    assert (out / "log.txt").read_text() == log_before, "a refused run leaves the folder alone"


def test_another_trainer_or_seed_is_refused_in_a_finished_coop_folder(assets, finished_base):
    out, _ = finished_base
    assert 'TRAINER.NAME "CoOp" -> "KgCoOp"' in refusal(assets, out, trainer="KgCoOp")
    assert "SEED 1 -> 2" in refusal(assets, out, opts=("SEED", "2"))


def test_same_run_with_other_print_frequency_and_workers_returns_the_stored_result(assets, finished_base, capsys):
    out, results = finished_base
    log_before = (out / "log.txt").read_text()
    again = run(assets, out, opts=("TRAIN.PRINT_FREQ", "1", "DATALOADER.NUM_WORKERS", "1"))
    assert again == pytest.approx(results)
    assert "already holds this run, finished" in capsys.readouterr().out
    assert (out / "log.txt").read_text() == log_before, "nothing was trained or tested again"


def test_resume_with_another_learning_rate_is_refused(assets, tmp_path):
    from trainers.coop import CoOp

    out = tmp_path / "killed"
    with killed_after(CoOp, "after_epoch", lambda trainer: trainer.epoch == 0), pytest.raises(KeyboardInterrupt):
        run(assets, out)
    assert "OPTIM.LR 0.002 -> 0.5" in refusal(assets, out, opts=("OPTIM.LR", "0.5"))
    assert (out / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-1\n"


def test_restart_clears_the_folder_and_runs_the_new_settings(assets, tmp_path):
    out = tmp_path / "restarted"
    run(assets, out)
    run(assets, out, opts=("OPTIM.MAX_EPOCH", "1"), flags=("--restart",))
    stored = json.loads((out / "run.json").read_text())["fingerprint"]
    assert stored["config"]["OPTIM.MAX_EPOCH"] == 1 and is_run_done(out)
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-1"]
    assert [name for name in os.listdir(out) if name.startswith("log.txt.before-restart-")]


def test_eval_only_folder_is_tied_to_the_model_it_evaluated(assets, finished_base, tmp_path):
    model_dir, _ = finished_base
    out = tmp_path / "test_new"
    run(assets, out, phase="new", model_dir=model_dir, load_epoch=2)
    stored = json.loads((out / "run.json").read_text())["fingerprint"]
    assert stored["mode"] == "eval-only" and "prompt_learner/model.pth.tar-2" in stored["eval"]["weights"]
    message = refusal(assets, out, phase="new", model_dir=model_dir, load_epoch=1)
    assert "eval.load_epoch 2 -> 1" in message and "eval.weights" in message


def test_a_folder_without_run_json_is_refused(assets, tmp_path):
    out = tmp_path / "legacy"
    out.mkdir()
    (out / "done.json").write_text('{"results": {"accuracy": 50.0}}')
    assert "no run.json says which run wrote it" in refusal(assets, out)


def test_partial_fingerprints_compare_only_what_they_name(finished_base):
    out, _ = finished_base
    assert run_folder_state(out, {"config": {"SEED": 1, "OPTIM.MAX_EPOCH": 2}}) == ("finished", [])
    assert run_folder_state(out, {"config": {"OPTIM.MAX_EPOCH": 3}}) == ("mismatch", ["OPTIM.MAX_EPOCH 2 -> 3"])
    assert run_folder_state(out.parent / "nothing-here", {"config": {}}) == ("new", [])
    assert run_folder_state(out, {"eval": {"model_run": "abc"}}) == ("mismatch", ['eval.model_run null -> "abc"'])


def test_result_neutral_keys_are_left_out_and_everything_else_counts():
    from dassl.config import get_cfg_default

    flat = flat_config(get_cfg_default())
    assert {"OUTPUT_DIR", "DATALOADER.NUM_WORKERS", "TRAIN.PRINT_FREQ", "USE_CUDA"}.isdisjoint(flat)
    assert {"OPTIM.LR", "SEED", "TRAINER.NAME", "DATASET.SUBSAMPLE_CLASSES", "INPUT.SIZE"} <= set(flat)
    stored = {"data": {"classnames": ["a", "b"], "files": {"split.json": "1"}}, "backbone": "x"}
    current = {"data": {"classnames": ["a", "b", "c"], "files": {"split.json": "2"}}, "backbone": "y"}
    assert differences(stored, current) == [
        'class list (2 classes ["a", "b"] -> 3 classes ["a", "b", "c"])',
        "split/few-shot files changed (split.json)",
        'backbone "x" -> "y"',
    ]


def test_resume_after_the_split_changed_is_refused_before_the_log_is_touched(assets, tmp_path):
    from trainers.coop import CoOp

    assets = (write_colour_images(str(tmp_path / "data")), assets[1])  # its own split file to change
    out = tmp_path / "killed"
    with killed_after(CoOp, "after_epoch", lambda trainer: trainer.epoch == 0), pytest.raises(KeyboardInterrupt):
        run(assets, out)
    log_before = (out / "log.txt").read_text()
    split = os.path.join(assets[0], "colours", "split_colours.json")
    content = json.loads(open(split).read())
    content["test"].append(content["train"].pop())
    with open(split, "w") as f:
        json.dump(content, f)
    message = refusal(assets, out)
    assert "split/few-shot files changed (shot_2-seed_1.json, split_colours.json)" in message
    assert (out / "log.txt").read_text() == log_before


def test_resume_from_another_folder_of_another_run_is_refused(assets, finished_base, tmp_path):
    source, _ = finished_base
    with pytest.raises(RunFolderMismatchError) as error:
        run(assets, tmp_path / "out", opts=("OPTIM.LR", "0.5"), flags=("--resume", str(source)))
    message = str(error.value)
    assert message.startswith(f"--resume {source} holds another run (OPTIM.LR 0.002 -> 0.5)")
    assert "drop --resume" in message
    assert not (tmp_path / "out/log.txt").exists() and not (tmp_path / "out/run.json").exists()


def test_a_key_added_to_the_toolkit_after_a_run_counts_only_when_set_off_its_default(assets, tmp_path, capsys):
    """Upgrading the toolkit must not orphan finished runs: a run.json written before a config key
    existed matches while that key holds its default, and is refused once it is set otherwise."""
    out = tmp_path / "older"
    results = run(assets, out)
    stored = json.loads((out / "run.json").read_text())
    del stored["fingerprint"]["config"]["TRAIN.SAVE_RESUMABLE_EVERY"]  # as a run of an older version wrote it
    (out / "run.json").write_text(json.dumps(stored))
    assert run(assets, out) == pytest.approx(results)
    assert "already holds this run, finished" in capsys.readouterr().out
    assert "TRAIN.SAVE_RESUMABLE_EVERY null -> 2" in refusal(assets, out, opts=("TRAIN.SAVE_RESUMABLE_EVERY", "2"))
