"""Tables of the few-shot, cross-dataset (xd) and domain-generalisation (dg)
protocols, built from ProtocolRuns (reporting/protocol_runs.py).

- few-shot: one table per method, datasets x shots, and one comparison table,
  methods as rows, of the averages over datasets per shot count;
- xd and dg: one comparison table each, methods as rows (as CoCoOp's Tables 2
  and 3): the source, every target, and the average over the targets.
A run that is missing or unfinished is listed under its table, never averaged:
an average is given only where every dataset of the table has a result.
"""
import re
from dataclasses import dataclass, field

import numpy as np

from reporting.published import TRANSFER_SOURCE as DEFAULT_SOURCE, benchmarks, dg_targets, published_protocol
from reporting.stats import Stat


def ordered(datasets, order):
    """`order`'s datasets first (the papers' order), then the others alphabetically."""
    return [d for d in order if d in datasets] + sorted(d for d in datasets if d not in order)


def config_family(config, dataset):
    """Configs that differ only by epochs or by dataset form one table: CoOp's
    rn50_ep50 / rn50_ep100 / rn50 are `rn50`, TGP-T's vit_b16_eurosat is `vit_b16_{dataset}`."""
    family = re.sub(r"_ep\d+", "", config)
    return family[: -len(dataset)] + "{dataset}" if family.endswith("_" + dataset) else family


def seeds_text(seeds):
    return ",".join(str(s) for s in seeds)


def run_problems(runs):
    """Lines for runs not counted, and for reference logs that were."""
    lines = []
    for run in sorted(runs, key=lambda r: r.path):
        if run.problem:
            lines.append(f"{run.dataset} {run.shots} shots seed{run.seed}: {run.problem} - {run.path}")
        elif run.reference:
            lines.append(f"{run.dataset} {run.shots} shots seed{run.seed}: reference log (no done.json), "
                         f"counted - {run.path}")
    return lines


def stat_of(runs, ci95):
    return Stat.of({r.seed: r.value for r in runs if r.problem is None}, ci95)


def missing_seeds(label, stat, expected):
    """A line when a cell lacks seeds its table's other cells have."""
    lacking = [s for s in expected if stat is None or s not in stat.seeds]
    return [f"{label}: missing seed(s) {seeds_text(lacking)}"] if lacking else []


# ----------------------------------------------------------------------------- few-shot


@dataclass
class FewshotTable:
    """One method: `cells[(dataset, shots)]` = Stat over seeds; `average[shots]`
    = mean over the datasets, None unless every dataset has that shot count."""

    trainer: str
    family: str
    datasets: list
    shots: list
    cells: dict
    configs: dict
    average: dict
    problems: list = field(default_factory=list)
    paper: dict = None

    @property
    def title(self):
        return f"{self.trainer} / {self.family}"


def build_fewshot_table(trainer, family, runs, ci95=False):
    datasets = ordered({r.dataset for r in runs}, benchmarks())
    shots = sorted({r.shots for r in runs})
    expected = sorted({r.seed for r in runs})
    cells, configs, problems = {}, {}, run_problems(runs)
    for dataset in datasets:
        for k in shots:
            group = [r for r in runs if r.dataset == dataset and r.shots == k]
            if group:
                cells[(dataset, k)] = stat_of(group, ci95)
                configs[(dataset, k)] = sorted({r.config for r in group})
            problems += missing_seeds(f"{dataset} {k} shots", cells.get((dataset, k)), expected)
    average = {}
    for k in shots:
        lacking = [d for d in datasets if cells.get((d, k)) is None]
        average[k] = None if lacking else float(np.mean([cells[(d, k)].mean for d in datasets]))
        if lacking:
            problems.append(f"average at {k} shots: not given, no result on {', '.join(lacking)}")
    paper = published_protocol("fewshot", trainer)
    return FewshotTable(trainer, family, datasets, shots, cells, configs, average, problems,
                        paper if paper and paper["shots"] and sorted(datasets) == sorted(benchmarks()) else None)


def build_fewshot_tables(runs, ci95=False, select=None):
    """One table per (trainer, config family) of the training runs."""
    groups = {}
    for run in runs:
        if run.kind == "train" and (select is None or select(run.key)):
            groups.setdefault((run.trainer, config_family(run.config, run.dataset)), []).append(run)
    keys = sorted(groups, key=lambda key: (key[0] != "ZeroshotCLIP", key))
    return [build_fewshot_table(trainer, family, groups[(trainer, family)], ci95) for trainer, family in keys]


# ----------------------------------------------------------------------------- xd and dg


@dataclass
class TransferRow:
    """One method's source model: its accuracy on the source and on each target."""

    trainer: str
    config: str
    shots: int
    source: Stat
    targets: dict
    average: float = None
    paper: dict = None


@dataclass
class TransferTable:
    protocol: str
    source: str
    targets: list
    rows: list
    problems: list = field(default_factory=list)


def paper_average(paper, targets, protocol, source):
    """The paper's average over `targets`: its published one for its own target
    set, else the mean of its per-target numbers when it has them all."""
    full = dg_targets() if protocol == "dg" else [d for d in benchmarks() if d != source]
    if sorted(targets) == sorted(full) and paper.get("average") is not None:
        return paper["average"]
    values = [paper["datasets"].get(t) for t in targets]
    return float(np.mean(values)) if values and None not in values else None


def target_protocol(dataset):
    return "dg" if dataset in dg_targets() else "xd"


def build_transfer_table(protocol, runs, ci95=False, select=None, source=DEFAULT_SOURCE):
    """The xd or dg table: a row per (trainer, config, shots) evaluated on this
    protocol's targets (the evaluations `select` keeps, when given: a sweep's)."""
    evaluations = [r for r in runs if r.kind == "eval" and
                   (select(r.key) if select else target_protocol(r.dataset) == protocol)]
    order = dg_targets() if protocol == "dg" else benchmarks()
    targets = ordered({r.dataset for r in evaluations}, order)
    groups = {}
    for run in evaluations:
        groups.setdefault((run.trainer, run.config, run.shots), []).append(run)
    rows, problems = [], run_problems(evaluations)
    for (trainer, config, shots), group in sorted(groups.items()):
        trained = [r for r in runs if r.kind == "train" and (r.trainer, r.config, r.shots, r.dataset) ==
                   (trainer, config, shots, source) and (select is None or select(r.key))]
        problems += run_problems(trained)
        expected = sorted({r.seed for r in group})
        by_target = {t: stat_of([r for r in group if r.dataset == t], ci95) for t in targets}
        for target in targets:
            problems += missing_seeds(f"{trainer}/{config} on {target}", by_target[target], expected)
        lacking = [t for t, stat in by_target.items() if stat is None]
        if lacking:
            problems.append(f"{trainer}/{config}: no average, no result on {', '.join(lacking)}")
        average = None if lacking else float(np.mean([by_target[t].mean for t in targets]))
        paper = published_protocol(protocol, trainer)
        if paper:
            paper = dict(paper, average=paper_average(paper, targets, protocol, source),
                         source=paper["source"] if source == DEFAULT_SOURCE else None)
            if paper["average"] is None and paper["source"] is None and not set(paper["datasets"]) & set(targets):
                paper = None  # nothing the paper reports applies to this table
        rows.append(TransferRow(trainer, config, shots, stat_of(trained, ci95), by_target, average, paper))
    return TransferTable(protocol, source, targets, rows, problems)
