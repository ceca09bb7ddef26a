"""tools/sweep.py --protocol fewshot|xd|dg, and trainers outside the method table,
against the fake scripts of tests/helpers/fake_logs.py (fake protocol.sh accuracies:
few-shot training 50 + shots + seed + len(dataset), evaluation on a target
30 + 2 * seed + len(target), +5 with the TextRefiner opts; zero-shot 40 + len(dataset))."""
import pytest

from tests.helpers.fake_logs import read_ledger, write_fake_scripts
from tests.helpers.tables import markdown_row
from tools import sweep
from tools.sweeping.protocols import default_datasets

DATASETS = ["dsa", "dsbb", "dsccc", "imagenetv2", "imagenet_a"]


@pytest.fixture
def world(tmp_path, monkeypatch):
    scripts = write_fake_scripts(tmp_path, ["coop", "kgcoop"], DATASETS)
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger.txt"))
    monkeypatch.setenv("FAKE_STEPS", "1")
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    args = ["--root", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--scripts-dir", scripts]
    return dict(args=args, out=tmp_path / "out", root=tmp_path, ledger=tmp_path / "ledger.txt")


def run_sweep(world, capsys, *extra):
    code = sweep.main(world["args"] + [str(e) for e in extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err




def started(world):
    return [d for event, d, _, _ in read_ledger(world["ledger"]) if event == "start"]


def plan_of(world, *extra):
    return sweep.plan_from_args(sweep.build_parser().parse_args(world["args"] + list(extra)))


def test_fewshot_configs_per_shot_count_as_data(world):
    coop = plan_of(world, "--protocol", "fewshot", "--trainers", "CoOp").rows[0]
    assert [coop.config_for("eurosat", k) for k in (1, 2, 4, 8, 16)] == [
        "rn50_ep50", "rn50_ep100", "rn50_ep100", "rn50", "rn50"]
    assert {coop.config_for("imagenet", k) for k in (1, 2, 4, 8, 16)} == {"rn50_ep50"}
    explicit = plan_of(world, "--protocol", "fewshot", "--trainers", "CoOp:mini").rows[0]
    assert {explicit.config_for(d, k) for d in ("imagenet", "dtd") for k in (1, 16)} == {"mini"}
    tgpt = plan_of(world, "--protocol", "fewshot", "--trainers", "TGPT").rows[0]
    assert tgpt.config_for("dtd", 1) == "vit_b16_dtd"
    plugin = plan_of(world, "--protocol", "fewshot", "--trainers", "KgCoOp+TextRefiner").rows[0]
    assert plugin.config_for("dtd", 1) == "vit_b16_ep100_ctxv1"
    plan = plan_of(world, "--protocol", "fewshot", "--trainers", "CoOp", "--datasets", "dsa", "--seeds", "1")
    assert plan.shots == [1, 2, 4, 8, 16] and len(plan.runs()) == 5


def test_a_config_family_names_a_config_per_shot_count(world):
    """`Trainer:mini_fewshot` is no file but a table: per shot count (unlisted counts take the entry
    of the largest listed count below them; no count, as in base-to-new, the 16-shot one)."""
    coop, cocoop, plugin = plan_of(world, "--protocol", "fewshot", "--trainers", "CoOp:mini_fewshot",
                                   "CoCoOp:mini_fewshot", "KgCoOp+TextRefiner:mini_fewshot").rows
    assert [coop.config_for("dsa", k) for k in (1, 3, 4, 8, 12, 16, 32)] == [
        "mini", "mini", "mini", "mini_ep10", "mini_ep10", "mini_ep5", "mini_ep5"]
    assert coop.config_for("dsa") == "mini_ep5" and plugin.config_for("dsa", 8) == "mini_ep10"
    assert [cocoop.config_for("dsa", k) for k in (1, 2, 4, 8, 16)] == ["mini", "mini_ep5", "mini_ep2", "mini_ep1", "mini_ep1"]
    with pytest.raises(sweep.SweepError, match="config family 'mini_fewshot' has no configs for trainer MyTrainer"):
        sweep.parse_rows(["MyTrainer:mini_fewshot"], world["root"],
                         methods={"MyTrainer": sweep.Method(None, "MyTrainer", "x")})


def test_transfer_source_shots_follow_shots(world):
    plan = plan_of(world, "--protocol", "dg", "--trainers", "KgCoOp", "--source", "dsa", "--datasets", "imagenet_a",
                   "--seeds", "1", "--shots", "4")
    source, target = plan.runs()
    assert source.run_dir == world["out"] / "dsa/KgCoOp/vit_b16_ep100_ctxv1_4shots/seed1" and source.shots == 4
    assert target.run_dir == world["out"] / "evaluation/KgCoOp/vit_b16_ep100_ctxv1_4shots/imagenet_a/seed1"
    assert target.args[:7] == ("xd_test", "KgCoOp", "KgCoOp", "vit_b16_ep100_ctxv1", "imagenet_a", "1", "dsa")


def test_protocol_default_datasets():
    assert default_datasets("xd") == ["caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                                      "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101"]
    assert default_datasets("dg") == ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
    assert len(default_datasets("fewshot")) == 11 and default_datasets("base2new")[0] == "imagenet"


def test_fewshot_sweep_runs_every_shot_count_and_zero_shot_once_per_seed(world, capsys):
    code, out, _ = run_sweep(world, capsys, "--protocol", "fewshot", "--trainers", "ZeroshotCLIP", "CoOp",
                             "--datasets", "dsa", "--shots", 1, 2, "--seeds", 1, 2)
    assert code == 0
    assert "Sweep: 6 done, 0 skipped, 0 failed, 0 not run" in out
    runs = sorted(d.split("/out/")[1] for d in started(world))
    assert runs == ["dsa/CoOp/rn50_ep100_2shots/seed1", "dsa/CoOp/rn50_ep100_2shots/seed2",
                    "dsa/CoOp/rn50_ep50_1shots/seed1", "dsa/CoOp/rn50_ep50_1shots/seed2",
                    "dsa/ZeroshotCLIP/vit_b16_0shots/seed1", "dsa/ZeroshotCLIP/vit_b16_0shots/seed2"]
    # CoOp 1 shot: 50 + 1 + seed + 3 = 55, 56; 2 shots: 56, 57
    assert markdown_row(out, "dsa", "### CoOp / rn50") == ["dsa", "55.50 ± 0.50", "56.50 ± 0.50", "1,2"]
    assert markdown_row(out, "Average", "### CoOp / rn50") == ["Average", "55.50", "56.50", ""]
    # methods as rows; zero-shot (40 + 3) first, at 0 shots
    assert markdown_row(out, "ZeroshotCLIP") == ["ZeroshotCLIP", "vit_b16", "43.00", "", "", "1"]
    assert markdown_row(out, "CoOp") == ["CoOp", "rn50", "", "55.50", "56.50", "1"]
    assert out.index("| ZeroshotCLIP") < out.index("| CoOp")
    assert (world["out"] / "fewshot_results.md").is_file()


def test_xd_trains_once_per_seed_then_evaluates_every_target(world, capsys):
    code, out, _ = run_sweep(world, capsys, "--protocol", "xd", "--trainers", "CoOp", "KgCoOp+TextRefiner",
                             "--source", "dsa", "--datasets", "dsbb", "dsccc", "--seeds", 1, 2)
    assert code == 0
    assert "Sweep: 12 done, 0 skipped, 0 failed, 0 not run" in out
    runs = [d.split("/out/")[1] for d in started(world)]
    coop_seed1 = [r for r in runs if "/CoOp/" in r and r.endswith("seed1")]
    assert coop_seed1 == ["dsa/CoOp/vit_b16_ctxv1_16shots/seed1", "evaluation/CoOp/vit_b16_ctxv1_16shots/dsbb/seed1",
                          "evaluation/CoOp/vit_b16_ctxv1_16shots/dsccc/seed1"]
    # CoOp: source 50 + 16 + seed + 3 = 70, 71; dsbb 30 + 2 * seed + 4 = 36, 38; dsccc 37, 39
    assert markdown_row(out, "CoOp") == ["CoOp", "vit_b16_ctxv1", "70.50 ± 0.50", "37.00 ± 1.00", "38.00 ± 1.00",
                                      "37.50", "1,2"]
    # the plug-in row: +5 everywhere
    assert markdown_row(out, "KgCoOp+TextRefiner")[2:6] == ["75.50 ± 0.50", "42.00 ± 1.00", "43.00 ± 1.00", "42.50"]
    assert "CoOp (paper)" not in out  # the paper has no number for these datasets


def test_dg_failed_evaluation_is_listed_and_the_sweep_goes_on(world, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "imagenet_a 2 xd_test")
    code, out, err = run_sweep(world, capsys, "--protocol", "dg", "--trainers", "CoOp", "--source", "dsa",
                               "--datasets", "imagenetv2", "imagenet_a", "--seeds", 1, 2)
    assert code == 1 and "fake crash" in err
    assert "Sweep: 5 done, 0 skipped, 1 failed, 0 not run" in out
    # imagenetv2: 30 + 2 * seed + 10 = 42, 44; imagenet_a seed 1 only: 30 + 2 + 10 = 42
    assert markdown_row(out, "CoOp")[2:6] == ["70.50 ± 0.50", "43.00 ± 1.00", "42.00 ± 0.00", "42.50"]
    assert "unfinished (no done.json)" in out and "CoOp/vit_b16_ctxv1 on imagenet_a: missing seed(s) 2" in out


def test_imported_trainer_gets_the_generic_script_and_its_imports(world, capsys, tmp_path):
    folder = world["root"] / "configs/trainers/MyTrainer"
    folder.mkdir()
    (folder / "a.yaml").touch()
    (folder / "b.yaml").touch()
    module = tmp_path / "my_trainer.py"
    module.touch()
    plan = plan_of(world, "--trainers", "MyTrainer:a", "--datasets", "dsa", "--seeds", "1", "--import", str(module))
    calls = []
    sweep.run_jobs(plan, runner=lambda argv, env, console: calls.append(argv) or 1)
    assert calls[0][1].endswith("scripts/protocol.sh")
    assert calls[0][2:] == ["base2new_train", "MyTrainer", "MyTrainer", "a", "dsa", "1", "-", str(module)]
    code, _, err = run_sweep(world, capsys, "--trainers", "MyTrainer", "--datasets", "dsa")
    assert code == 2 and "name one as MyTrainer:CFG" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seeds", "-1"], "--seeds -1: seeds are integers of 0 or more"),
        (["--shots", "-3"], "--shots -3: shots per class must be 1 or more"),
        (["--shots", "1", "2"], "base2new runs one shot count"),
        (["--protocol", "xd", "--shots", "4", "16"], "xd runs one shot count"),
        (["--plot", "out.txt"], "--plot out.txt: give an image file ending in .png"),
        (["--datasets", "../../.."], "--datasets ../../..: give a dataset config stem"),
        (["--datasets", "image_folder"], "--datasets image_folder: runs are named after the dataset config"),
        (["--trainers", "CoOp:minii"], "CoOp: unknown config 'minii' (did you mean mini?)"),
        (["--trainers", "MyTrainer:a"], "unknown trainer 'MyTrainer'"),
        (["--import", "missing.py"], "missing.py: no such file"),
    ],
)
def test_bad_sweep_arguments_exit_2_before_any_run(world, capsys, extra, message):
    defaults = {"--trainers": ["CoOp"], "--datasets": ["dsa"]}
    args = list(extra)
    for flag, value in defaults.items():
        if flag not in args:
            args += [flag, *value]
    code, out, err = run_sweep(world, capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert started(world) == []
