"""parse_test_res.py --fewshot/--xd/--dg/--all on hand-made output trees: every
mean, std, average and difference to the paper below is worked out by hand."""
import csv
import json
import os
import re

import pytest

import parse_test_res
from tests.helpers.fake_logs import (
    eval_log, evaluation_dir, fewshot_dir, train_log, write_evaluation_seed, write_fewshot_seed, write_run,
)
from tests.helpers.tables import markdown_row

BENCHMARKS = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
              "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101"]
XD_TARGETS = BENCHMARKS[1:]
DG_TARGETS = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
COCOOP = ("CoCoOp", "vit_b16_c4_ep10_batch1_ctxv1")


def run_cli(capsys, *args):
    code = parse_test_res.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err




def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def fewshot_tree(tmp_path):
    """CoOp on eurosat and dtd at 1 and 2 shots (seeds 1-3), zero-shot CLIP, and
    dtd 2 shots seed 3 killed (a toolkit run: sweep console, no done.json)."""
    values = {("eurosat", 1): (50, 52, 57), ("eurosat", 2): (60, 61, 62), ("dtd", 1): (40, 41, 42),
              ("dtd", 2): (44, 46, None)}
    configs = {1: "rn50_ep50", 2: "rn50_ep100"}
    for (dataset, shots), by_seed in values.items():
        for seed, value in enumerate(by_seed, start=1):
            if value is not None:
                write_fewshot_seed(tmp_path, dataset, "CoOp", configs[shots], shots, seed, value)
        write_fewshot_seed(tmp_path, dataset, "ZeroshotCLIP", "rn50", 0, 1, 30.0 + len(dataset), zero_shot=True)
    killed = fewshot_dir(tmp_path, "dtd", "CoOp", "rn50_ep100", 2, 3)
    write_run(killed, train_log(99.0), done=False)
    open(os.path.join(killed, "sweep_console.txt"), "w").close()
    return tmp_path


def test_fewshot_tables_by_hand(fewshot_tree, capsys):
    code, out, _ = run_cli(capsys, "--fewshot", fewshot_tree)
    assert code == 0
    section = "### CoOp / rn50"
    # eurosat 1 shot: 50, 52, 57 -> mean 53, std sqrt((9 + 1 + 16) / 3) = 2.94
    assert markdown_row(out, "eurosat", section) == ["eurosat", "53.00 ± 2.94", "61.00 ± 0.82", "1,2,3"]
    # dtd 2 shots: seed 3 killed -> 44, 46 only, listed
    assert markdown_row(out, "dtd", section) == ["dtd", "41.00 ± 0.82", "45.00 ± 1.00", "1,2,3"]
    # averages over the two datasets: (53 + 41) / 2 = 47, (61 + 45) / 2 = 53
    assert markdown_row(out, "Average", section) == ["Average", "47.00", "53.00", ""]
    assert f"dtd 2 shots seed3: unfinished (no done.json) - {fewshot_dir(fewshot_tree, 'dtd', 'CoOp', 'rn50_ep100', 2, 3)}" in out
    assert "dtd 2 shots: missing seed(s) 3" in out
    assert "Configs: 1 shots rn50_ep50; 2 shots rn50_ep100." in out
    # comparison, methods as rows, zero-shot first: (30 + 7 + 30 + 3) / 2 = 35 at 0 shots
    assert markdown_row(out, "ZeroshotCLIP") == ["ZeroshotCLIP", "rn50", "35.00", "", "", "2"]
    assert markdown_row(out, "CoOp") == ["CoOp", "rn50", "", "47.00", "53.00", "2"]
    assert re.search(r"\| Method +\| Config family +\| 0-shot", out)
    assert "its own table below names the config of each shot count" in out
    rows = read_csv(fewshot_tree / "fewshot_results.csv")
    average = [r for r in rows if r["trainer"] == "CoOp" and r["is_average"] == "True"]
    assert [(r["dataset"], r["shots"], r["mean"], r["std"]) for r in average] == [
        ("average", "1", "47.00", ""), ("average", "2", "53.00", "")]
    assert {r["dataset"] for r in rows if r["is_average"] == "False"} == {"eurosat", "dtd"}


def test_fewshot_average_is_not_given_when_a_dataset_lacks_the_shot_count(fewshot_tree, capsys):
    write_fewshot_seed(fewshot_tree, "eurosat", "CoOp", "rn50", 4, 1, 70.0)
    code, out, _ = run_cli(capsys, "--fewshot", fewshot_tree, "--ci95")
    assert markdown_row(out, "Average", "### CoOp / rn50") == ["Average", "47.00", "53.00", "", ""]
    assert "average at 4 shots: not given, no result on dtd" in out
    # ci95 = 1.96 * 2.944 / sqrt(3) = 3.33
    assert markdown_row(out, "eurosat", "### CoOp / rn50")[1] == "53.00 ± 3.33"
    assert "ci95" in read_csv(fewshot_tree / "fewshot_results.csv")[0]


def test_fewshot_paper_averages_beside_the_users_on_the_11_datasets(tmp_path, capsys):
    for i, dataset in enumerate(BENCHMARKS):  # 70 + i: the average over the 11 datasets is 75
        for seed in (1, 2):
            write_fewshot_seed(tmp_path, dataset, *COCOOP, 16, seed, 70.0 + i)
    code, out, _ = run_cli(capsys, "--fewshot", tmp_path)
    section = "### CoCoOp"
    assert markdown_row(out, "Average", section) == ["Average", "75.00", ""]
    # the CasPL README's CoCoOp 16-shot average: 74.90
    assert markdown_row(out, "Average, paper", section) == ["Average, paper", "74.90", ""]
    assert markdown_row(out, "Average, diff", section) == ["Average, diff", "+0.10", ""]
    assert "CASPL_README" in out


def test_xd_table_with_the_papers_numbers_and_differences(tmp_path, capsys):
    for seed, source in ((1, 71.0), (2, 72.0)):
        write_fewshot_seed(tmp_path, "imagenet", "CoOp", "vit_b16_ctxv1", 16, seed, source)
        for i, target in enumerate(XD_TARGETS):  # 60 + i + seed: mean 61.5 + i; over the targets 66
            write_evaluation_seed(tmp_path, "CoOp", "vit_b16_ctxv1", 16, target, seed, 60.0 + i + seed)
    code, out, _ = run_cli(capsys, "--xd", tmp_path)
    assert code == 0
    row = markdown_row(out, "CoOp")
    assert row[:5] == ["CoOp", "vit_b16_ctxv1", "71.50 ± 0.50", "61.50 ± 0.50", "62.50 ± 0.50"]
    assert row[-2:] == ["66.00", "1,2"]
    paper = markdown_row(out, "CoOp (paper)")  # CoCoOp Table 2: source 71.51, Caltech101 93.70, average 63.88
    assert paper[2:4] == ["71.51", "93.70"] and paper[-2] == "63.88"
    assert markdown_row(out, "CoOp (diff)")[2:4] == ["-0.01", "-32.20"] and markdown_row(out, "CoOp (diff)")[-2] == "+2.12"
    rows = read_csv(tmp_path / "xd_results.csv")
    average = [r for r in rows if r["is_average"] == "True"]
    assert [(r["mean"], r["paper"], r["diff"]) for r in average] == [("66.00", "63.88", "+2.12")]
    assert [r["role"] for r in rows][:2] == ["source", "target"]


def test_dg_average_only_over_complete_rows_and_reference_logs_count(tmp_path, capsys):
    # CoCoOp, seed 1 only: 60, 50, 40, 70 -> average 55; paper (Table 3) average 59.91
    write_fewshot_seed(tmp_path, "imagenet", *COCOOP, 16, 1, 70.0)
    for target, value in zip(DG_TARGETS, (60.0, 50.0, 40.0, 70.0)):
        write_evaluation_seed(tmp_path, *COCOOP, 16, target, 1, value)
    # CoOp: a reference repository's tree (no done.json), imagenet_r never evaluated
    write_run(fewshot_dir(tmp_path, "imagenet", "CoOp", "vit_b16_ep50", 16, 1), train_log(71.0), done=False)
    for target in DG_TARGETS[:3]:
        write_run(evaluation_dir(tmp_path, "CoOp", "vit_b16_ep50", 16, target, 1), eval_log(50.0), done=False)
    code, out, _ = run_cli(capsys, "--dg", tmp_path)
    assert code == 0
    assert markdown_row(out, "CoCoOp")[2:8] == ["70.00 ± 0.00", "60.00 ± 0.00", "50.00 ± 0.00", "40.00 ± 0.00",
                                          "70.00 ± 0.00", "55.00"]
    assert markdown_row(out, "CoCoOp (diff)")[-2] == "-4.91"
    coop = markdown_row(out, "CoOp")
    assert coop[2:5] == ["71.00 ± 0.00", "50.00 ± 0.00", "50.00 ± 0.00"] and coop[6:8] == ["", ""]
    assert "CoOp/vit_b16_ep50: no average, no result on imagenet_r" in out
    assert "imagenetv2 16 shots seed1: reference log (no done.json), counted" in out


def test_done_json_wins_and_a_corrupt_one_is_unfinished(tmp_path, capsys):
    first = write_evaluation_seed(tmp_path, *COCOOP, 16, "imagenetv2", 1, 60.0)
    with open(os.path.join(first, "log.txt"), "a") as f:
        f.write("\n".join(eval_log(99.0).splitlines()[-6:]) + "\n")  # a later value appended to the log
    corrupt = write_evaluation_seed(tmp_path, *COCOOP, 16, "imagenetv2", 2, 80.0)
    with open(os.path.join(corrupt, "done.json"), "w") as f:
        f.write('{"results": {"accur')
    code, out, _ = run_cli(capsys, "--dg", tmp_path)
    assert markdown_row(out, "CoCoOp")[3] == "60.00 ± 0.00"
    assert f"imagenetv2 16 shots seed2: unfinished (unreadable done.json) - {corrupt}" in out
    with open(os.path.join(first, "done.json")) as f:
        assert json.load(f)["results"]["accuracy"] == 60.0


def test_all_detects_every_protocol(fewshot_tree, capsys):
    write_fewshot_seed(fewshot_tree, "imagenet", *COCOOP, 16, 1, 70.0)
    write_evaluation_seed(fewshot_tree, *COCOOP, 16, "imagenet_a", 1, 50.0)
    write_evaluation_seed(fewshot_tree, *COCOOP, 16, "dtd", 1, 45.0)
    code, out, _ = run_cli(capsys, "--all", fewshot_tree, "--out-prefix", fewshot_tree / "res")
    assert code == 0
    assert "### Few-shot" in out and "### Cross-dataset transfer: imagenet -> 1 target(s)" in out
    assert "### Domain generalisation: imagenet -> 1 target(s)" in out
    assert {p.name for p in fewshot_tree.glob("res_*")} == {f"res_{p}.{e}" for p in ("fewshot", "xd", "dg")
                                                            for e in ("md", "csv")}


def test_fewshot_and_transfer_figures(fewshot_tree, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "--fewshot", fewshot_tree, "--plot", tmp_path / "fewshot.png")
    assert code == 0 and (tmp_path / "fewshot.png").stat().st_size > 1000
    code, _, err = run_cli(capsys, "--dg", fewshot_tree, "--plot", tmp_path / "dg.png")
    assert code == 2 and "nothing to plot" in err


def test_multi_exp_reads_the_fewshot_layout(tmp_path, capsys):
    for shots, values in ((1, (50.0, 52.0)), (2, (60.0, 64.0))):
        for seed, value in enumerate(values, start=1):
            write_run(tmp_path / "eurosat/CoOp" / f"rn50_{shots}shots/nctx16_cscFalse_ctpend/seed{seed}",
                      train_log(value))
    code, out, err = run_cli(capsys, tmp_path / "eurosat/CoOp", "--multi-exp")
    assert code == 0, err
    assert "* accuracy: 51.00% +- 1.00%" in out and "* accuracy: 62.00% +- 2.00%" in out
    assert out.strip().endswith("* accuracy: 56.50%")  # (51 + 62) / 2


def test_multi_exp_error_does_not_point_at_multi_exp(tmp_path, capsys):
    (tmp_path / "exp/seed1").mkdir(parents=True)
    write_run(tmp_path / "exp/seed2", train_log(50.0))
    code, _, err = run_cli(capsys, tmp_path, "--multi-exp")
    assert code == 2 and "log.txt" in err and "--multi-exp" not in err


def test_base2new_comparison_table_methods_as_rows(tmp_path, capsys):
    from tests.helpers.fake_logs import write_base2new_seed

    for seed, (base, new) in ((1, (80.0, 60.0)), (2, (82.0, 62.0))):  # CoOp: Base 81, New 61 on both datasets
        for dataset in ("eurosat", "dtd"):
            write_base2new_seed(tmp_path, dataset, "CoOp", "vit_b16_ctxv1", seed, base, new)
    write_base2new_seed(tmp_path, "eurosat", "ZeroshotCLIP", "vit_b16", 1, 70.0, 74.0, zero_shot=True)
    write_base2new_seed(tmp_path, "dtd", "ZeroshotCLIP", "vit_b16", 1, 72.0, 76.0, zero_shot=True)
    code, out, _ = run_cli(capsys, "--base2new", tmp_path)
    section = "### Base-to-new: average over datasets, methods as rows"
    # zero-shot: Base 71, New 75, H = 2*71*75/146 = 72.95; paper over EuroSAT and DTD: Base (56.48 + 53.24) / 2
    # = 54.86, New (64.05 + 59.90) / 2 = 61.975, H = 58.20 -> diff +14.74
    assert markdown_row(out, "ZeroshotCLIP", section) == ["ZeroshotCLIP", "vit_b16", "16", "71.00", "75.00", "72.95",
                                                   "58.20", "+14.74"]
    # CoOp: H = 2*81*61/142 = 69.59; paper: Base 85.815, New 47.96, H = 61.53 -> diff +8.06
    assert markdown_row(out, "CoOp", section) == ["CoOp", "vit_b16_ctxv1", "16", "81.00", "61.00", "69.59", "61.53", "+8.06"]
    assert out.index("| ZeroshotCLIP", out.index(section)) < out.index("| CoOp", out.index(section))


def test_all_on_a_tree_without_runs_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--all", tmp_path)
    assert code == 2 and err.strip() == f"error: no run of any protocol under {tmp_path}: give the OUTPUT folder the scripts wrote"


def test_transfer_bars_and_base2new_reference_logs(tmp_path, capsys):
    from tests.helpers.fake_logs import base2new_dir

    write_fewshot_seed(tmp_path, "imagenet", *COCOOP, 16, 1, 70.0)
    write_evaluation_seed(tmp_path, *COCOOP, 16, "imagenet_r", 1, 75.0)
    code, _, err = run_cli(capsys, "--dg", tmp_path, "--plot", tmp_path / "dg.png")
    assert code == 0, err
    assert (tmp_path / "dg.png").stat().st_size > 1000
    # a reference repository's base-to-new pair: no done.json, logs with the end signal and a result
    write_run(base2new_dir(tmp_path, "train_base", "dtd", "CoOp", "vit_b16_ctxv1", 1), train_log(80.0), done=False)
    write_run(base2new_dir(tmp_path, "test_new", "dtd", "CoOp", "vit_b16_ctxv1", 1), eval_log(60.0), done=False)
    code, out, _ = run_cli(capsys, "--base2new", tmp_path)
    assert markdown_row(out, "dtd", "### CoOp / vit_b16_ctxv1")[1] == "80.00 ± 0.00"
    assert "dtd train_base seed1: reference log (no done.json), counted" in out
