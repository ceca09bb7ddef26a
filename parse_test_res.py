"""Read test results from run logs and summarise them over seeds.

Upstream mode (Dassl's tools/parse_test_res.py, same flags and output)::

    python parse_test_res.py output/my_experiment            # seed folders with training logs
    python parse_test_res.py output/my_experiment --test-log # eval-only logs
    python parse_test_res.py output/my_experiments --multi-exp [--ci95] [--keyword macro_f1]

A number counts only after the end signal: `Finish training` or `Finished
training` (the KgCoOp/ProGrad toolbox copy), `=> result` with --test-log.

Base-to-new mode (beyond upstream)::

    python parse_test_res.py --base2new output [--out-prefix PATH] [--plot PATH.png]

walks output/base2new/{train_base,test_new}/<dataset>/shots_<K>/<Trainer>/<cfg>/seed<S>
and prints one Base/New/H table per (trainer, config, shots), with the published
numbers beside the user's where a paper reports them, then writes the tables as
Markdown and CSV (default output/base2new_results.{md,csv}).

Few-shot, cross-dataset and domain-generalisation modes (beyond upstream)::

    python parse_test_res.py --fewshot output [--plot fewshot.png]   # datasets x shots, methods as rows
    python parse_test_res.py --xd output [--source imagenet]         # source, 10 targets, average
    python parse_test_res.py --dg output                             # source, ImageNet-V2/-Sketch/-A/-R, average
    python parse_test_res.py --all output                            # every protocol found

read the CoOp repositories' layout (reporting/protocol_runs.py). In every
mode but upstream's, a run of this toolkit counts only with its done.json (whose
value wins over the log), and a reference repository's folder counts when its log
holds the end signal and a result, flagged "reference log" (reporting/runs.py).
"""
import argparse
import csv
import glob
import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np
from tabulate import tabulate

from reporting.cells import diff, fmt, fmt_stat
from reporting.errors import ReportError
from reporting.protocol_report import detected_protocols, report_protocol
from reporting.published import (
    TRANSFER_SOURCE, comparable_backbones, load_published, published_backbone, published_method,
)
from reporting.runs import (
    DONE_MARKER, TEST_END_SIGNAL, TRAIN_END_SIGNALS, log_files, logged_backbone, read_run_value, scan_log,
)
from reporting.stats import Stat, spread

PHASES = ("train_base", "test_new")


ParseError = ReportError  # input the parser cannot make sense of; the message says what to do


# ----------------------------------------------------------------------------- logs


def end_signals_for(test_log):
    return (TEST_END_SIGNAL,) if test_log else TRAIN_END_SIGNALS


def listdir_nohidden(path):
    return sorted(name for name in os.listdir(path) if not name.startswith("."))


# ----------------------------------------------------------------------------- upstream mode


def parse_directory(directory, keyword="accuracy", test_log=False, ci95=False, multi_exp=False):
    """Upstream `parse_function`: print one line per seed folder and the
    summary; return the mean. Plain files beside the seed folders are ignored."""
    print(f"Parsing files in {directory}")
    if not os.path.isdir(directory):
        raise ParseError(f"{directory} is not a directory; pass the folder that holds the seed folders")
    end_signals = end_signals_for(test_log)
    found = []
    for name in listdir_nohidden(directory):
        subdir = os.path.join(directory, name)
        if not os.path.isdir(subdir):
            continue
        log_path = os.path.join(subdir, "log.txt")
        if not os.path.isfile(log_path):
            raise ParseError(
                f"{log_path} does not exist: every folder in {directory} must be a run folder holding "
                "log.txt" + ("" if multi_exp else " (use --multi-exp when it holds experiment folders)")
            )
        _, value = scan_log(log_path, keyword, end_signals)
        if value is not None:
            found.append((log_path, value))
    if not found:
        hint = "" if test_log else " (eval-only logs need --test-log)"
        raise ParseError(
            f"Nothing found in {directory}: no log.txt holds '* {keyword}: X%' after "
            f"{' or '.join(repr(s) for s in end_signals)}{hint}"
        )
    for log_path, value in found:
        print(f"file: {log_path}. {keyword}: {value:.2f}%. ")
    values = [value for _, value in found]
    mean = np.mean(values)
    print("===")
    print(f"Summary of directory: {directory}")
    print(f"* {keyword}: {mean:.2f}% +- {spread(values, ci95):.2f}%")
    print("===")
    return mean


def experiment_dirs(directory):
    """Every folder under DIRECTORY whose subfolders are run folders (hold log.txt):
    the experiments of upstream's layout, and of the few-shot layout's deeper
    <cfg>_<K>shots/<variant>/seed<S> folders."""
    found = []
    for parent, subdirs, _ in os.walk(directory):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if any(os.path.isfile(os.path.join(parent, d, "log.txt")) for d in subdirs):
            found.append(parent)
            subdirs[:] = []
    return found


def parse_multi_exp(directory, keyword="accuracy", test_log=False, ci95=False):
    """Upstream --multi-exp: summarise every experiment folder, then their mean."""
    if not os.path.isdir(directory):
        raise ParseError(f"{directory} is not a directory; pass the folder that holds the experiment folders")
    experiments = experiment_dirs(directory)
    if not experiments:
        raise ParseError(f"no experiment folder under {directory}: none holds seed folders with log.txt")
    means = [parse_directory(path, keyword, test_log, ci95, multi_exp=True) for path in experiments]
    print("Average performance")
    print(f"* {keyword}: {np.mean(means):.2f}%")
    return np.mean(means)


# ----------------------------------------------------------------------------- base-to-new runs


@dataclass(frozen=True)
class RunResult:
    """One seed folder of the base-to-new tree; `problem` is None when it counts."""

    phase: str
    dataset: str
    shots: int
    trainer: str
    config: str
    seed: int
    path: str
    value: float = None
    problem: str = None
    reference: bool = False  # a log of the reference repositories (no done.json)
    backbone: str = None


def read_run(run_dir, key, keyword):
    """A RunResult for one seed folder (see reporting.runs for what counts), with the backbone its log names."""
    read = read_run_value(run_dir, key["phase"] == "train_base", keyword)
    backbone = logged_backbone(log_files(run_dir)) if read.value is not None else None
    return RunResult(**key, path=run_dir, value=read.value, problem=read.problem, reference=read.reference,
                     backbone=backbone)


RUN_DIR_PATTERN = re.compile(r"shots_(\d+)/([^/]+)/([^/]+)/seed(\d+)$")


def collect_runs(output_root, keyword="accuracy"):
    """Every seed folder under OUTPUT_ROOT/base2new/{train_base,test_new}."""
    base2new = os.path.join(output_root, "base2new")
    if not os.path.isdir(base2new):
        raise ParseError(
            f"{base2new} does not exist: --base2new takes the output root that holds base2new/ "
            "(the OUTPUT of the base2new scripts, default ./output)"
        )
    runs = []
    for phase in PHASES:
        phase_dir = os.path.join(base2new, phase)
        pattern = os.path.join(glob.escape(phase_dir), "*", "shots_*", "*", "*", "seed*")
        for run_dir in sorted(glob.glob(pattern)):
            relative = os.path.relpath(run_dir, phase_dir).replace(os.sep, "/")
            dataset, rest = relative.split("/", 1)
            match = RUN_DIR_PATTERN.fullmatch(rest)
            if not match or not os.path.isdir(run_dir):
                continue
            shots, trainer, config, seed = match.groups()
            key = dict(phase=phase, dataset=dataset, shots=int(shots), trainer=trainer, config=config, seed=int(seed))
            runs.append(read_run(run_dir, key, keyword))
    return runs


# ----------------------------------------------------------------------------- tables


def harmonic_mean(base, new):
    return 2 * base * new / (base + new) if base + new > 0 else 0.0


@dataclass
class DatasetRow:
    dataset: str
    base: Stat
    new: Stat
    paper: dict = None

    @property
    def complete(self):
        return self.base is not None and self.new is not None

    @property
    def h(self):
        return harmonic_mean(self.base.mean, self.new.mean) if self.complete else None


@dataclass
class Base2NewTable:
    trainer: str
    config: str
    shots: int
    rows: list
    problems: list = field(default_factory=list)
    paper_entry: dict = None
    backbone_note: str = None

    @property
    def title(self):
        return f"{self.trainer} / {self.config}"

    @property
    def complete_rows(self):
        return [r for r in self.rows if r.complete]


def dataset_order(datasets):
    """The 11 benchmarks in the papers' order, then any other dataset alphabetically."""
    benchmarks = load_published()["benchmarks"]
    known = [d for d in benchmarks if d in datasets]
    return known + sorted(d for d in datasets if d not in benchmarks)


def seeds_text(seeds):
    return ",".join(str(s) for s in seeds)


def table_problems(runs_by_dataset, rows):
    """Lines naming every run that was not counted, every missing seed and
    every dataset whose Base and New do not pair up."""
    problems = []
    expected = sorted({r.seed for runs in runs_by_dataset.values() for r in runs})
    for dataset, runs in runs_by_dataset.items():
        present = {(r.phase, r.seed) for r in runs}
        for run in sorted(runs, key=lambda r: (r.phase, r.seed)):
            if run.problem:
                problems.append(f"{dataset} {run.phase} seed{run.seed}: {run.problem} - {run.path}")
            elif run.reference:
                problems.append(f"{dataset} {run.phase} seed{run.seed}: reference log (no {DONE_MARKER}), "
                                f"counted - {run.path}")
        for phase in PHASES:
            for seed in expected:
                if (phase, seed) not in present:
                    problems.append(f"{dataset} {phase} seed{seed}: missing (no run folder)")
    for row in rows:
        if row.base is None and row.new is None:
            problems.append(f"{row.dataset}: no finished run at all - not in the table's averages")
        elif not row.complete:
            lacking = "New (test_new)" if row.new is None else "Base (train_base)"
            problems.append(f"{row.dataset}: no {lacking} result - no H, not in the averages")
        elif row.base.seeds != row.new.seeds:
            problems.append(
                f"{row.dataset}: Base seeds {seeds_text(row.base.seeds)} differ from New seeds "
                f"{seeds_text(row.new.seeds)} - H pairs different seed sets"
            )
    return problems


def paper_entry_for(trainer, shots, keyword):
    """The published entry when the paper's setting matches: 16 shots, accuracy."""
    published = load_published()
    if shots != published["setting"]["shots"] or keyword != "accuracy":
        return None
    return published_method(trainer)


def build_table(trainer, config, shots, runs, ci95=False, keyword="accuracy"):
    runs_by_dataset = {}
    for run in runs:
        runs_by_dataset.setdefault(run.dataset, []).append(run)
    paper_entry = paper_entry_for(trainer, shots, keyword)
    backbones = sorted({r.backbone for r in runs if r.backbone})
    backbone_note = None
    if paper_entry is not None and not comparable_backbones(paper_entry, backbones):
        backbone_note = (
            f"Paper numbers not shown: {paper_entry['display_name']} was measured on {published_backbone(paper_entry)}, "
            f"these runs used {', '.join(backbones)}."
        )
        paper_entry = None
    rows = []
    for dataset in dataset_order(runs_by_dataset):
        counted = [r for r in runs_by_dataset[dataset] if r.problem is None]
        base = Stat.of({r.seed: r.value for r in counted if r.phase == "train_base"}, ci95)
        new = Stat.of({r.seed: r.value for r in counted if r.phase == "test_new"}, ci95)
        paper = paper_entry["datasets"].get(dataset) if paper_entry else None
        rows.append(DatasetRow(dataset, base, new, paper))
    problems = table_problems({d: runs_by_dataset[d] for d in dataset_order(runs_by_dataset)}, rows)
    table = Base2NewTable(trainer, config, shots, rows, problems, paper_entry, backbone_note)
    if paper_entry and not any(row.paper for row in rows):
        complete = [row.dataset for row in table.complete_rows]
        if paper_averages(table, complete) is None:
            table.paper_entry = None
    return table


def config_family(config, dataset):
    """Per-dataset configs (TGP-T's `vit_b16_<dataset>`) form one table: `vit_b16_{dataset}`."""
    suffix = f"_{dataset}"
    return config[: -len(suffix)] + "_{dataset}" if config.endswith(suffix) else config


def build_tables(output_root, keyword="accuracy", ci95=False, select=None):
    """One table per (trainer, config, shots) found under OUTPUT_ROOT; `select`
    (trainer, config, shots, dataset, seed) -> bool keeps a subset of the runs."""
    groups = {}
    for run in collect_runs(output_root, keyword):
        if select is None or select(run.trainer, run.config, run.shots, run.dataset, run.seed):
            groups.setdefault((run.trainer, config_family(run.config, run.dataset), run.shots), []).append(run)
    return [build_table(*key, runs, ci95, keyword) for key, runs in sorted(groups.items())]


@dataclass
class Averages:
    """Both averages over the datasets with Base and New: the papers' H of the
    averaged Base and New, and the mean of the per-dataset H values."""

    base: float
    new: float
    h_of_means: float
    mean_of_h: float
    datasets: tuple

    @classmethod
    def of(cls, rows):
        if not rows:
            return None
        base = float(np.mean([r.base.mean for r in rows]))
        new = float(np.mean([r.new.mean for r in rows]))
        return cls(base, new, harmonic_mean(base, new), float(np.mean([r.h for r in rows])), tuple(r.dataset for r in rows))


def paper_averages(table, datasets):
    """The paper's averages over the same datasets: its published average when
    they are the 11 benchmarks, else the mean of its per-dataset numbers."""
    entry = table.paper_entry
    if entry is None or not datasets:
        return None
    per_dataset = [entry["datasets"].get(d) for d in datasets]
    mean_of_h = float(np.mean([p["h"] for p in per_dataset])) if all(per_dataset) else None
    if sorted(datasets) == sorted(load_published()["benchmarks"]):
        avg = entry["average"]
        return Averages(avg["base"], avg["new"], avg["h"], mean_of_h, tuple(datasets))
    if not all(per_dataset):
        return None
    base = float(np.mean([p["base"] for p in per_dataset]))
    new = float(np.mean([p["new"] for p in per_dataset]))
    return Averages(base, new, harmonic_mean(base, new), mean_of_h, tuple(datasets))


# ----------------------------------------------------------------------------- output

AVERAGE_LABEL = "Average: H of mean Base/New (papers)"
MEAN_H_LABEL = "Average: mean of per-dataset H"


def table_records(table):
    """The table as plain records (dataset rows, then the two average rows),
    the one source of the Markdown and CSV output."""
    records = []
    for row in table.rows:
        paper = row.paper or {}
        records.append(
            dict(
                dataset=row.dataset,
                base=row.base,
                new=row.new,
                h=row.h,
                paper_base=paper.get("base"),
                paper_new=paper.get("new"),
                paper_h=paper.get("h"),
                seeds=seeds_text(row.base.seeds if row.base else ()),
                new_seeds=seeds_text(row.new.seeds if row.new else ()),
            )
        )
    mine = Averages.of(table.complete_rows)
    if mine is not None:
        paper = paper_averages(table, mine.datasets)
        records.append(
            dict(
                dataset=AVERAGE_LABEL,
                base=mine.base,
                new=mine.new,
                h=mine.h_of_means,
                paper_base=paper.base if paper else None,
                paper_new=paper.new if paper else None,
                paper_h=paper.h_of_means if paper else None,
                seeds="",
                new_seeds="",
            )
        )
        records.append(
            dict(
                dataset=MEAN_H_LABEL,
                base=None,
                new=None,
                h=mine.mean_of_h,
                paper_base=None,
                paper_new=None,
                paper_h=paper.mean_of_h if paper else None,
                seeds="",
                new_seeds="",
            )
        )
    return records


def mean_of(value):
    """A Stat's mean, or a plain number (average rows) as it is."""
    return value.mean if isinstance(value, Stat) else value


def cell(value):
    return fmt_stat(value) if isinstance(value, Stat) else fmt(value)


def seeds_cell(record):
    if record["seeds"] == record["new_seeds"]:
        return record["seeds"]
    return f"{record['seeds'] or '-'} / {record['new_seeds'] or '-'}"


def markdown_table(table, ci95=False):
    """One table: heading with the config, rows, paper columns when published,
    and the list of runs that were not counted."""
    spread_name = "ci95" if ci95 else "std"
    with_paper = table.paper_entry is not None
    headers = ["Dataset", f"Base (± {spread_name})"]
    headers += ["Base paper", "Base diff"] if with_paper else []
    headers += [f"New (± {spread_name})"]
    headers += ["New paper", "New diff"] if with_paper else []
    headers += ["H"]
    headers += ["H paper", "H diff"] if with_paper else []
    headers += ["Seeds (Base / New)"]
    body = []
    for rec in table_records(table):
        line = [rec["dataset"], cell(rec["base"])]
        if with_paper:
            line += [fmt(rec["paper_base"]), fmt(diff(mean_of(rec["base"]), rec["paper_base"]), signed=True)]
        line += [cell(rec["new"])]
        if with_paper:
            line += [fmt(rec["paper_new"]), fmt(diff(mean_of(rec["new"]), rec["paper_new"]), signed=True)]
        line += [fmt(rec["h"])]
        if with_paper:
            line += [fmt(rec["paper_h"]), fmt(diff(rec["h"], rec["paper_h"]), signed=True)]
        line += [seeds_cell(rec)]
        body.append(line)
    parts = [f"### {table.title} ({table.shots} shots)", ""]
    if with_paper:
        parts += [paper_note(table), ""]
    if table.backbone_note:
        parts += [table.backbone_note, ""]
    parts += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    parts += ["H = 2·Base·New/(Base+New) of the seed-averaged Base and New; diff = yours - paper.", ""]
    averages = Averages.of(table.complete_rows)
    if averages is not None:
        parts += [averages_note(table, averages.datasets), ""]
    if table.problems:
        parts += ["Not counted / flagged:", ""] + [f"- {p}" for p in table.problems] + [""]
    return "\n".join(parts)


def paper_note(table):
    entry = table.paper_entry
    source = entry["source"]
    note = (
        f"Paper: {entry['display_name']} - {source['paper']}, {source['table']}; "
        f"backbone {published_backbone(entry)}, config {entry['config']}."
    )
    if table.config != entry["config"]:
        note += f" This table ran {table.config}, not the paper's config: differences are expected."
    if not entry["datasets"]:
        note += " Only the 11-dataset average is published."
    return note


def averages_note(table, datasets):
    note = f"Averages over {len(datasets)} dataset(s) with Base and New: {', '.join(datasets)}."
    if table.paper_entry is None:
        return note
    if sorted(datasets) == sorted(load_published()["benchmarks"]):
        return note + " Paper averages: the published 11-dataset averages."
    if paper_averages(table, datasets) is None:
        return note + " The paper publishes no numbers for this set of datasets."
    return note + " Paper averages: its per-dataset numbers averaged over the same datasets."


def comparison_markdown(tables):
    """Methods as rows (zero-shot first): each table's average Base, New and H, beside the paper's.
    Only tables over the same datasets are compared; the others are named below it."""
    rows, skipped = [], []
    tables = sorted(tables, key=lambda t: t.trainer != "ZeroshotCLIP")
    averaged = [(t, Averages.of(t.complete_rows)) for t in tables]
    datasets = max((a.datasets for _, a in averaged if a), key=len, default=())
    for table, mine in averaged:
        if mine is None or mine.datasets != datasets:
            skipped.append(table.title)
            continue
        paper = paper_averages(table, list(mine.datasets))
        rows.append([table.trainer, table.config, table.shots, fmt(mine.base), fmt(mine.new), fmt(mine.h_of_means),
                     fmt(paper.h_of_means if paper else None),
                     fmt(diff(mine.h_of_means, paper.h_of_means if paper else None), signed=True)])
    headers = ["Method", "Config", "Shots", "Base", "New", "H", "H paper", "H diff"]
    parts = ["### Base-to-new: average over datasets, methods as rows", "",
             f"Over {len(datasets)} dataset(s): {', '.join(datasets)}.", "",
             tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if skipped:
        parts += [f"Not compared (other datasets, or none complete): {', '.join(skipped)}", ""]
    return "\n".join(parts)


def format_markdown(tables, ci95=False):
    if not tables:
        return "No base-to-new runs found.\n"
    return "\n".join([markdown_table(t, ci95) for t in tables] + [comparison_markdown(tables)])


CSV_COLUMNS = [
    "trainer", "config", "shots", "dataset",
    "base_mean", "base_spread", "new_mean", "new_spread", "h",
    "paper_base", "paper_new", "paper_h", "diff_base", "diff_new", "diff_h",
    "base_seeds", "new_seeds",
]


def csv_rows(tables):
    for table in tables:
        for rec in table_records(table):
            base, new = mean_of(rec["base"]), mean_of(rec["new"])
            yield [
                table.trainer, table.config, table.shots, rec["dataset"],
                fmt(base), fmt(rec["base"].spread if isinstance(rec["base"], Stat) else None),
                fmt(new), fmt(rec["new"].spread if isinstance(rec["new"], Stat) else None),
                fmt(rec["h"]),
                fmt(rec["paper_base"]), fmt(rec["paper_new"]), fmt(rec["paper_h"]),
                fmt(diff(base, rec["paper_base"]), True), fmt(diff(new, rec["paper_new"]), True),
                fmt(diff(rec["h"], rec["paper_h"]), True),
                rec["seeds"], rec["new_seeds"],
            ]


def write_outputs(tables, out_prefix, ci95=False):
    """Write OUT_PREFIX.md and OUT_PREFIX.csv; return their paths."""
    folder = os.path.dirname(os.path.abspath(out_prefix))
    os.makedirs(folder, exist_ok=True)
    md_path, csv_path = f"{out_prefix}.md", f"{out_prefix}.csv"
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(format_markdown(tables, ci95))
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_rows(tables))
    return md_path, csv_path


def plot_groups(tables):
    """(title, Base, New, H of means) of every table's average row."""
    groups = []
    for table in tables:
        averages = Averages.of(table.complete_rows)
        if averages is not None:
            groups.append((f"{table.title}\n{table.shots} shots", averages.base, averages.new, averages.h_of_means))
    return groups


def report_base2new(output_root, keyword="accuracy", ci95=False, out_prefix=None, plot_path=None, select=None):
    """Print the tables, write Markdown/CSV (and the plot when asked); return the tables."""
    tables = build_tables(output_root, keyword, ci95, select)
    print(format_markdown(tables, ci95))
    out_prefix = out_prefix or os.path.join(output_root, "base2new_results")
    for path in write_outputs(tables, out_prefix, ci95):
        print(f"Saved {path}")
    if plot_path:
        from reporting.plots import plot_base2new

        try:
            plot_base2new(plot_groups(tables), plot_path)
        except ValueError as error:
            raise ParseError(str(error)) from error
        print(f"Saved {plot_path}")
    return tables


# ----------------------------------------------------------------------------- command line


PROTOCOL_FLAGS = ("base2new", "fewshot", "xd", "dg", "all")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", help="folder of seed folders (or of experiments with --multi-exp)")
    parser.add_argument("--ci95", action="store_true", help=r"report the 95%% confidence interval instead of std")
    parser.add_argument("--test-log", action="store_true", help="parse eval-only logs (after '=> result')")
    parser.add_argument("--multi-exp", action="store_true", help="directory holds several experiment folders")
    parser.add_argument("--keyword", default="accuracy", help="which evaluator keyword to extract")
    parser.add_argument("--base2new", metavar="OUTPUT_ROOT", help="Base/New/H tables of OUTPUT_ROOT/base2new")
    parser.add_argument("--fewshot", metavar="OUTPUT_ROOT", help="few-shot tables (datasets x shots, methods as rows)")
    parser.add_argument("--xd", metavar="OUTPUT_ROOT", help="cross-dataset table: source, targets, average")
    parser.add_argument("--dg", metavar="OUTPUT_ROOT", help="domain-generalisation table: source, variants, average")
    parser.add_argument("--all", metavar="OUTPUT_ROOT", help="the tables of every protocol found in OUTPUT_ROOT")
    parser.add_argument("--source", default=TRANSFER_SOURCE, help="with --xd/--dg: the dataset trained on")
    parser.add_argument("--out-prefix", help="with a protocol flag: write OUT_PREFIX.md and .csv "
                        "(default OUTPUT_ROOT/<protocol>_results; with --all, OUT_PREFIX_<protocol>)")
    parser.add_argument("--plot", metavar="PATH.png", help="with a protocol flag other than --all: its figure")
    return parser


def report(protocol, output_root, args, out_prefix=None):
    if protocol == "base2new":
        return report_base2new(output_root, args.keyword, args.ci95, out_prefix, args.plot)
    return report_protocol(protocol, output_root, args.keyword, args.ci95, out_prefix, args.plot, source=args.source)


def report_all(output_root, args):
    """Every protocol found under OUTPUT_ROOT, each to its own files."""
    if not os.path.isdir(output_root):
        raise ParseError(f"{output_root} is not a directory; pass the output root of the runs (OUTPUT)")
    protocols = detected_protocols(output_root)
    if not protocols:
        raise ParseError(f"no run of any protocol under {output_root}: give the OUTPUT folder the scripts wrote")
    for protocol in protocols:
        report(protocol, output_root, args, f"{args.out_prefix}_{protocol}" if args.out_prefix else None)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = [flag for flag in PROTOCOL_FLAGS if getattr(args, flag)]
    if len(chosen) + bool(args.directory) != 1:
        parser.error("give either DIRECTORY (upstream mode) or one of --base2new, --fewshot, --xd, --dg, --all OUTPUT_ROOT")
    if not chosen and (args.out_prefix or args.plot):
        parser.error("--out-prefix and --plot go with --base2new, --fewshot, --xd, --dg or --all")
    if chosen == ["all"] and args.plot:
        parser.error("--plot draws one protocol's figure: give --base2new, --fewshot, --xd or --dg instead of --all")
    try:
        if chosen == ["all"]:
            report_all(args.all, args)
        elif chosen:
            report(chosen[0], getattr(args, chosen[0]), args, args.out_prefix)
        elif args.multi_exp:
            parse_multi_exp(args.directory, args.keyword, args.test_log, args.ci95)
        else:
            parse_directory(args.directory, args.keyword, args.test_log, args.ci95)
    except ParseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
