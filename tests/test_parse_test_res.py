"""parse_test_res.py on hand-written log trees; every expected number is worked out by hand."""
import csv
import os

import pytest

import parse_test_res as ptr
from tests.helpers.fake_logs import base2new_dir, eval_log, train_log, write_base2new_seed, write_run

COOP = ("CoOp", "vit_b16_ctxv1")


def run_cli(capsys, *argv):
    code = ptr.main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.fixture
def train_tree(tmp_path):
    """seed1: 81.00 (2 decimals, `Finish training`); seed2: 83.6 (1 decimal,
    the ProGrad copy's `Finished training`); seed3: killed before the end."""
    exp = tmp_path / "exp"
    write_run(exp / "seed1", train_log(81.0, val_accuracy=70.0))
    write_run(exp / "seed2", train_log(83.6, end_signal="Finished training", decimals=1))
    write_run(exp / "seed3", train_log(99.0, finished=False, val_accuracy=99.0), done=False)
    return exp


def test_upstream_output_is_exact(train_tree, capsys):
    code, out = run_cli(capsys, train_tree)
    # mean(81.0, 83.6) = 82.30; population std = 2.6 / 2 = 1.30
    assert code == 0
    assert out.out.splitlines() == [
        f"Parsing files in {train_tree}",
        f"file: {train_tree}/seed1/log.txt. accuracy: 81.00%. ",
        f"file: {train_tree}/seed2/log.txt. accuracy: 83.60%. ",
        "===",
        f"Summary of directory: {train_tree}",
        "* accuracy: 82.30% +- 1.30%",
        "===",
    ]


def test_ci95_replaces_std(train_tree, capsys):
    _, out = run_cli(capsys, train_tree, "--ci95")
    # 1.96 * 1.30 / sqrt(2) = 1.8017
    assert "* accuracy: 82.30% +- 1.80%" in out.out.splitlines()


def test_keyword_selects_another_metric(train_tree, capsys):
    _, out = run_cli(capsys, train_tree, "--keyword", "macro_f1")
    # the fake evaluator prints macro_f1 = accuracy - 1: 80.00 and 82.6
    assert f"file: {train_tree}/seed2/log.txt. macro_f1: 82.60%. " in out.out.splitlines()
    assert "* macro_f1: 81.30% +- 1.30%" in out.out.splitlines()


def test_test_log_reads_eval_only_blocks(tmp_path, capsys):
    exp = tmp_path / "eval"
    write_run(exp / "seed1", eval_log(70.0))
    write_run(exp / "seed2", eval_log(74.0))
    write_run(exp / "seed3", eval_log(50.0, finished=False), done=False)
    code, out = run_cli(capsys, exp, "--test-log", "--ci95")
    # mean 72.00, std 2.00, ci95 = 1.96 * 2 / sqrt(2) = 2.77
    assert code == 0
    assert out.out.splitlines()[-2:] == ["* accuracy: 72.00% +- 2.77%", "==="]
    assert f"file: {exp}/seed3/log.txt" not in out.out


def test_training_logs_without_test_log_flag_ignore_eval_only_runs(tmp_path, capsys):
    write_run(tmp_path / "exp" / "seed1", eval_log(70.0))
    code, out = run_cli(capsys, tmp_path / "exp")
    assert code == 2
    assert "Nothing found in" in out.err and "--test-log" in out.err


def test_multi_exp_averages_experiment_means(train_tree, tmp_path, capsys):
    other = tmp_path / "exp_b"
    write_run(other / "seed1", train_log(90.0))
    write_run(other / "seed2", train_log(92.0))
    multi = tmp_path / "multi"
    multi.mkdir()
    os.rename(train_tree, multi / "exp_a")
    os.rename(other, multi / "exp_b")
    code, out = run_cli(capsys, multi, "--multi-exp")
    lines = out.out.splitlines()
    # exp_a 82.30, exp_b 91.00 -> (82.30 + 91.00) / 2 = 86.65
    assert code == 0
    assert "* accuracy: 82.30% +- 1.30%" in lines
    assert "* accuracy: 91.00% +- 1.00%" in lines
    assert lines[-2:] == ["Average performance", "* accuracy: 86.65%"]


def test_seed_folder_without_log_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "exp" / "seed1").mkdir(parents=True)
    code, out = run_cli(capsys, tmp_path / "exp")
    assert code == 2
    assert "seed1/log.txt does not exist" in out.err and "--multi-exp" in out.err


# ----------------------------------------------------------------------------- base-to-new


@pytest.fixture
def b2n_root(tmp_path):
    """CoOp on three benchmarks: imagenet complete, dtd missing seed 3
    everywhere, eurosat with an unfinished test_new (seed 2) and an unfinished
    train_base (seed 3); plus a non-published row with a plug-in name."""
    root = tmp_path / "output"
    for seed, base, new in [(1, 76.0, 66.0), (2, 77.0, 67.0), (3, 78.0, 68.0)]:
        write_base2new_seed(root, "imagenet", *COOP, seed, base, new)
    for seed, base, new in [(1, 80.0, 40.0), (2, 82.0, 44.0)]:
        write_base2new_seed(root, "dtd", *COOP, seed, base, new)
    write_base2new_seed(root, "eurosat", *COOP, 1, 90.0, 50.0)
    write_base2new_seed(root, "eurosat", *COOP, 2, 92.0, None)
    write_run(base2new_dir(root, "test_new", "eurosat", *COOP, 2), eval_log(0.0, finished=False), done=False)
    write_run(base2new_dir(root, "train_base", "eurosat", *COOP, 3), train_log(0.0, finished=False), done=False)
    write_base2new_seed(root, "mini_fashion", "KgCoOp+TextRefiner", "mini_ctxv1", 1, 60.0, 50.0)
    return root


def table_lines(markdown, title):
    section = markdown.split(f"### {title}")[1].split("### ")[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def cells(line):
    return [c.strip() for c in line.strip("|").split("|")]


def row(markdown, title, dataset):
    return next(cells(line) for line in table_lines(markdown, title) if cells(line)[0] == dataset)


def test_base2new_table_with_paper_columns(b2n_root, capsys):
    code, out = run_cli(capsys, "--base2new", b2n_root)
    md = out.out
    assert code == 0
    assert cells(table_lines(md, "CoOp / vit_b16_ctxv1")[0]) == [
        "Dataset", "Base (± std)", "Base paper", "Base diff", "New (± std)", "New paper", "New diff",
        "H", "H paper", "H diff", "Seeds (Base / New)",
    ]
    # imagenet: Base 76,77,78 -> 77.00 ± sqrt(2/3) = 0.82; New 67.00 ± 0.82;
    # H = 2*77*67/144 = 71.65; paper 76.47 / 67.88 / 71.92
    assert row(md, "CoOp / vit_b16_ctxv1", "imagenet") == [
        "imagenet", "77.00 ± 0.82", "76.47", "+0.53", "67.00 ± 0.82", "67.88", "-0.88",
        "71.65", "71.92", "-0.27", "1,2,3",
    ]
    # dtd: 81.00 ± 1.00, 42.00 ± 2.00, H = 2*81*42/123 = 55.32; paper 79.44 / 41.18 / 54.24
    assert row(md, "CoOp / vit_b16_ctxv1", "dtd") == [
        "dtd", "81.00 ± 1.00", "79.44", "+1.56", "42.00 ± 2.00", "41.18", "+0.82",
        "55.32", "54.24", "+1.08", "1,2",
    ]
    # eurosat: Base seeds 1,2 -> 91.00 ± 1.00; New seed 1 only -> 50.00; H = 9100/141 = 64.54
    assert row(md, "CoOp / vit_b16_ctxv1", "eurosat") == [
        "eurosat", "91.00 ± 1.00", "92.19", "-1.19", "50.00 ± 0.00", "54.74", "-4.74",
        "64.54", "68.69", "-4.15", "1,2 / 1",
    ]


def test_base2new_both_averages_against_the_paper_over_the_same_datasets(b2n_root, capsys):
    _, out = run_cli(capsys, "--base2new", b2n_root)
    md = out.out
    # mine: Base (77+81+91)/3 = 83.00, New (67+42+50)/3 = 53.00, H = 2*83*53/136 = 64.69;
    # mean of H = (71.6528 + 55.3171 + 64.5390) / 3 = 63.84.
    # paper over the same 3: Base (76.47+79.44+92.19)/3 = 82.70, New (67.88+41.18+54.74)/3
    # = 54.60, H = 2*82.7*54.6/137.3 = 65.77; mean of H = (71.92+54.24+68.69)/3 = 64.95.
    assert row(md, "CoOp / vit_b16_ctxv1", "Average: H of mean Base/New (papers)") == [
        "Average: H of mean Base/New (papers)", "83.00", "82.70", "+0.30", "53.00", "54.60", "-1.60",
        "64.69", "65.77", "-1.08", "",
    ]
    assert row(md, "CoOp / vit_b16_ctxv1", "Average: mean of per-dataset H") == [
        "Average: mean of per-dataset H", "", "", "", "", "", "", "63.84", "64.95", "-1.11", "",
    ]
    assert "Paper averages: its per-dataset numbers averaged over the same datasets." in md


def test_base2new_lists_every_run_not_counted(b2n_root, capsys):
    _, out = run_cli(capsys, "--base2new", b2n_root)
    section = out.out.split("### CoOp / vit_b16_ctxv1")[1].split("### ")[0]
    flagged = [line[2:] for line in section.splitlines() if line.startswith("- ")]
    trained = os.path.join(b2n_root, "base2new", "train_base", "eurosat", "shots_16", *COOP, "seed3")
    tested = os.path.join(b2n_root, "base2new", "test_new", "eurosat", "shots_16", *COOP, "seed2")
    assert flagged == [
        "dtd train_base seed3: missing (no run folder)",
        "dtd test_new seed3: missing (no run folder)",
        f"eurosat test_new seed2: unfinished (no done.json) - {tested}",
        f"eurosat train_base seed3: unfinished (no done.json) - {trained}",
        "eurosat test_new seed3: missing (no run folder)",
        "eurosat: Base seeds 1,2 differ from New seeds 1 - H pairs different seed sets",
    ]


def test_base2new_row_without_published_numbers(b2n_root, capsys):
    _, out = run_cli(capsys, "--base2new", b2n_root)
    title = "KgCoOp+TextRefiner / mini_ctxv1"
    assert f"### {title} (16 shots)" in out.out
    # H = 2*60*50/110 = 54.55; no paper columns
    assert row(out.out, title, "mini_fashion") == ["mini_fashion", "60.00 ± 0.00", "50.00 ± 0.00", "54.55", "1"]


def test_base2new_writes_csv_and_markdown(b2n_root, tmp_path, capsys):
    prefix = tmp_path / "report" / "b2n"
    run_cli(capsys, "--base2new", b2n_root, "--out-prefix", prefix)
    with open(f"{prefix}.csv") as f:
        rows = list(csv.DictReader(f))
    eurosat = next(r for r in rows if r["trainer"] == "CoOp" and r["dataset"] == "eurosat")
    assert (eurosat["base_mean"], eurosat["new_mean"], eurosat["h"], eurosat["diff_h"]) == ("91.00", "50.00", "64.54", "-4.15")
    assert (eurosat["base_seeds"], eurosat["new_seeds"]) == ("1,2", "1")
    mean_h = next(r for r in rows if r["dataset"] == "Average: mean of per-dataset H" and r["trainer"] == "CoOp")
    assert (mean_h["h"], mean_h["paper_h"], mean_h["diff_h"]) == ("63.84", "64.95", "-1.11")
    assert [r["trainer"] for r in rows].count("KgCoOp+TextRefiner") == 3
    with open(f"{prefix}.md") as f:
        assert "| imagenet " in f.read()


def test_base2new_default_outputs_and_plot(b2n_root, capsys):
    plot = b2n_root / "plot.png"
    run_cli(capsys, "--base2new", b2n_root, "--plot", plot)
    assert (b2n_root / "base2new_results.csv").is_file() and (b2n_root / "base2new_results.md").is_file()
    with open(plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_zero_shot_on_all_benchmarks_uses_published_averages(tmp_path, capsys):
    """Zero-shot train_base runs are eval-only: their `=> result` block is the
    Base number. Values are the paper's + 1 (Base) and - 2 (New)."""
    published = ptr.load_published()["methods"]["ZeroshotCLIP"]["datasets"]
    root = tmp_path / "output"
    for stem, paper in published.items():
        write_base2new_seed(root, stem, "ZeroshotCLIP", "vit_b16", 1, paper["base"] + 1, paper["new"] - 2, zero_shot=True)
    _, out = run_cli(capsys, "--base2new", root)
    title = "ZeroshotCLIP / vit_b16"
    assert row(out.out, title, "oxford_pets")[:7] == ["oxford_pets", "92.17 ± 0.00", "91.17", "+1.00", "95.26 ± 0.00", "97.26", "-2.00"]
    # mine: Base 69.3445 + 1 = 70.3445, New 74.2182 - 2 = 72.2182 (means of the published rows);
    # paper: the published averages 69.34 / 74.22 / 71.70; H = 2*70.3445*72.2182/142.5627 = 71.27
    average = row(out.out, title, "Average: H of mean Base/New (papers)")
    assert average[:10] == ["Average: H of mean Base/New (papers)", "70.34", "69.34", "+1.00", "72.22", "74.22", "-2.00", "71.27", "71.70", "-0.43"]
    assert "Paper averages: the published 11-dataset averages." in out.out
    assert [r[0] for r in map(cells, table_lines(out.out, title)[2:13])] == ptr.load_published()["benchmarks"]


def test_textrefiner_folder_gets_the_average_only_paper_entry(tmp_path, capsys):
    for stem in ptr.load_published()["benchmarks"]:
        write_base2new_seed(tmp_path, stem, "TextRefiner", "vit_b16_ep10_ctxv1", 1, 80.0, 70.0)
    write_base2new_seed(tmp_path, "dtd", "TextRefiner", "vit_b16_ep10_ctxv1_other", 1, 80.0, 70.0)
    _, out = run_cli(capsys, "--base2new", tmp_path)
    title = "TextRefiner / vit_b16_ep10_ctxv1"
    assert "Paper: CoOp + TextRefiner" in out.out and "Only the 11-dataset average is published." in out.out
    assert row(out.out, title, "dtd")[2:4] == ["", ""]
    # H = 2*80*70/150 = 74.67; paper 79.74 / 74.32 / 76.94
    assert row(out.out, title, "Average: H of mean Base/New (papers)")[1:10] == [
        "80.00", "79.74", "+0.26", "70.00", "74.32", "-4.32", "74.67", "76.94", "-2.27",
    ]
    assert row(out.out, title, "Average: mean of per-dataset H")[7:10] == ["74.67", "", ""]
    # one dataset alone: no published number to compare with, so no paper columns
    assert row(out.out, "TextRefiner / vit_b16_ep10_ctxv1_other", "dtd") == ["dtd", "80.00 ± 0.00", "70.00 ± 0.00", "74.67", "1"]


def test_paper_config_mismatch_and_other_shots_are_said(tmp_path, capsys):
    write_base2new_seed(tmp_path, "dtd", "CoOp", "vit_b16_ep50", 1, 80.0, 60.0)
    write_base2new_seed(tmp_path, "dtd", "CoOp", "vit_b16_ctxv1", 1, 80.0, 60.0, shots=4)
    _, out = run_cli(capsys, "--base2new", tmp_path)
    assert "This table ran vit_b16_ep50, not the paper's config" in out.out
    four_shots = out.out.split("### CoOp / vit_b16_ctxv1 (4 shots)")[1].split("### ")[0]
    assert "Paper:" not in four_shots and "Base paper" not in four_shots


def test_base2new_other_keyword_has_no_paper_column(b2n_root, capsys):
    _, out = run_cli(capsys, "--base2new", b2n_root, "--keyword", "macro_f1", "--ci95")
    # macro_f1 = accuracy - 1: imagenet Base 75, 76, 77 -> 76.00, ci95 = 1.96 * 0.8165 / sqrt(3) = 0.92;
    # New 65, 66, 67 -> 66.00; H = 2*76*66/142 = 70.65
    assert row(out.out, "CoOp / vit_b16_ctxv1", "imagenet") == ["imagenet", "76.00 ± 0.92", "66.00 ± 0.92", "70.65", "1,2,3"]


def test_finished_run_without_result_and_latest_restart_log(tmp_path, capsys):
    run = base2new_dir(tmp_path, "train_base", "dtd", *COOP, 1)
    write_run(run, train_log(0.0, finished=False), accuracy=None)
    write_base2new_seed(tmp_path, "dtd", *COOP, 2, None, 45.0)
    restarted = base2new_dir(tmp_path, "train_base", "dtd", *COOP, 2)
    write_run(restarted, train_log(10.0, finished=False), done=False)
    with open(os.path.join(restarted, "log.txt-2025-01-01-10-00-00"), "w") as f:
        f.write(train_log(84.0))
    write_run(restarted, open(os.path.join(restarted, "log.txt")).read(), accuracy=84.0)
    write_base2new_seed(tmp_path, "dtd", *COOP, 1, None, 44.0)
    _, out = run_cli(capsys, "--base2new", tmp_path)
    assert f"dtd train_base seed1: no '* accuracy: X%' result in its log - {run}" in out.out
    assert row(out.out, "CoOp / vit_b16_ctxv1", "dtd")[1] == "84.00 ± 0.00"


def test_base2new_without_tree_is_a_clear_error(tmp_path, capsys):
    code, out = run_cli(capsys, "--base2new", tmp_path)
    assert code == 2 and "base2new does not exist" in out.err


def test_directory_and_base2new_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        ptr.main([str(tmp_path), "--base2new", str(tmp_path)])
    assert "either DIRECTORY" in capsys.readouterr().err
