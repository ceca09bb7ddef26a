"""What a sweep runs: its rows (methods), and the runs of each protocol with
the script and arguments that launch them, checked before anything starts.

Built-in rows run base-to-new through their hand-written scripts
(`scripts/<method>/base2new_{train,test}.sh`); every other run, and every run
of a trainer outside the method table (registered with --import or in a file
under trainers/, configs under configs/trainers/<Name>/), goes through the
generic `scripts/protocol.sh`, so a new trainer needs no scripts of its own.
Kept torch-free, so that a restarted sweep starts at once.
"""
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.sweeping.protocols import (
    CONFIG_FAMILIES, DEFAULT_SOURCE, FEWSHOT_SHOTS, default_datasets, family_config, fewshot_config,
)

BASE2NEW_SCRIPTS = {"train_base": "base2new_train.sh", "test_new": "base2new_test.sh"}
BASE2NEW_STEPS = {"train_base": "base2new_train", "test_new": "base2new_test"}  # of the generic script
GENERIC_SCRIPT = "protocol.sh"
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Method:
    """A sweep row kind: the scripts folder that runs its base-to-new runs (None:
    the generic script), the trainer launched, its default config (`{dataset}`
    stands for the dataset stem, for methods with one config per dataset), the
    opts that make the row (plug-ins), extra base-to-new script arguments after
    CFG, and the configs/trainers/ folder when it is not the trainer's."""

    scripts: str
    trainer: str
    config: str
    opts: tuple = ()
    script_args: tuple = ()
    config_dir: str = ""

    @property
    def configs(self):
        return self.config_dir or self.trainer


TEXTREFINER_ON = ("TRAINER.TEXTREFINER.ENABLED", "True")

# Row name -> Method. The row name is the <Trainer> folder of the output tree.
METHODS = {
    "ZeroshotCLIP": Method("zsclip", "ZeroshotCLIP", "vit_b16", config_dir="CoOp"),
    "CoOp": Method("coop", "CoOp", "vit_b16_ctxv1"),
    "CoCoOp": Method("cocoop", "CoCoOp", "vit_b16_c4_ep10_batch1_ctxv1"),
    "KgCoOp": Method("kgcoop", "KgCoOp", "vit_b16_ep100_ctxv1"),
    "DPT": Method("dpt", "DPT", "vit_b16", script_args=("DPT",)),
    "VLP": Method("dpt", "VLP", "vit_b16", script_args=("VLP",)),
    "VPT": Method("dpt", "VPT", "vit_b16", script_args=("VPT",)),
    "TGPT": Method("tgpt", "TGPT", "vit_b16_{dataset}"),
    "TextRefiner": Method("textrefiner", "TextRefiner", "vit_b16_ep10_ctxv1"),
    "CoOp+TextRefiner": Method("coop", "CoOp", "vit_b16_ctxv1", TEXTREFINER_ON),
    "CoCoOp+TextRefiner": Method("cocoop", "CoCoOp", "vit_b16_c4_ep10_batch1_ctxv1", TEXTREFINER_ON),
    "KgCoOp+TextRefiner": Method("kgcoop", "KgCoOp", "vit_b16_ep100_ctxv1", TEXTREFINER_ON),
    "DPT+TextRefiner": Method("dpt", "DPT", "vit_b16", TEXTREFINER_ON, ("DPT",)),
    "VLP+TextRefiner": Method("dpt", "VLP", "vit_b16", TEXTREFINER_ON, ("VLP",)),
}


class SweepError(Exception):
    """Bad sweep arguments, found before any run starts."""


@dataclass(frozen=True)
class Row:
    name: str
    method: Method
    config: str
    explicit: bool = False  # the user gave Trainer:cfg (then it serves every shot count)

    @property
    def is_plugin(self):
        return self.name != self.method.trainer

    @property
    def is_zero_shot(self):
        return self.method.trainer == "ZeroshotCLIP"

    def config_for(self, dataset, shots=None):
        """The config of a run on `dataset`; with `shots`, the method's few-shot config (or the
        config family's, see tools/sweeping/protocols.py)."""
        config = self.config
        if config in CONFIG_FAMILIES:
            config = family_config(config, self.method.trainer, shots)
        elif shots is not None and not self.explicit:
            config = fewshot_config(self.method.trainer, config, dataset, shots)
        return config.format(dataset=dataset)


@dataclass(frozen=True)
class Run:
    row: Row
    dataset: str
    seed: int
    phase: str
    run_dir: Path
    shots: int = 16
    config: str = ""
    script: Path = None
    args: tuple = ()

    @property
    def label(self):
        shots = f" {self.shots} shots" if self.phase == "fewshot" else ""
        return f"{self.row.name}/{self.config} {self.dataset}{shots} seed{self.seed} {self.phase}"


@dataclass
class Plan:
    rows: list
    datasets: list
    seeds: list
    shots: list
    data_root: Path
    output: Path
    scripts_dir: Path
    slots: list
    opts: list
    protocol: str = "base2new"
    source: str = DEFAULT_SOURCE
    imports: list = field(default_factory=list)
    python: dict = None

    @property
    def configs_dir(self):
        return self.scripts_dir.parent / "configs"

    def script(self, row, phase):
        """The base-to-new script of a built-in row."""
        return self.scripts_dir / row.method.scripts / BASE2NEW_SCRIPTS[phase]

    def generic(self, step, row, config, dataset, seed, source="-"):
        """(script, args) of one step of scripts/protocol.sh."""
        args = (step, row.method.trainer, row.method.configs, config, dataset, str(seed), source, *self.imports)
        return self.scripts_dir / GENERIC_SCRIPT, args

    def base2new_run(self, row, dataset, seed, phase):
        shots = self.shots[0]
        config = row.config_for(dataset)
        run_dir = self.output / "base2new" / phase / dataset / f"shots_{shots}" / row.name / config / f"seed{seed}"
        if row.method.scripts and not self.imports:
            script, args = self.script(row, phase), (dataset, str(seed), config, *row.method.script_args)
        else:
            script, args = self.generic(BASE2NEW_STEPS[phase], row, config, dataset, seed)
        return Run(row, dataset, seed, phase, run_dir, shots, config, script, args)

    def fewshot_run(self, row, dataset, seed, shots, config=None):
        """A training run on all classes of `dataset` (zero-shot: an evaluation, 0 shots),
        with the method's few-shot config unless `config` is given."""
        shots = 0 if row.is_zero_shot else shots
        config = config or row.config_for(dataset, shots)
        run_dir = self.output / dataset / row.name / f"{config}_{shots}shots" / f"seed{seed}"
        script, args = self.generic("fewshot", row, config, dataset, seed)
        return Run(row, dataset, seed, "fewshot", run_dir, shots, config, script, args)

    def target_run(self, row, target, seed):
        """The source model of this row and seed evaluated on all classes of `target`."""
        shots = 0 if row.is_zero_shot else self.shots[0]
        config = row.config_for(self.source)
        run_dir = self.output / "evaluation" / row.name / f"{config}_{shots}shots" / target / f"seed{seed}"
        script, args = self.generic("xd_test", row, config, target, seed, self.source)
        return Run(row, target, seed, "test_target", run_dir, shots, config, script, args)

    def jobs(self):
        """Lists of runs; a job's runs go in order on one slot, each after the previous succeeded.

        base2new: per (row, dataset, seed), train_base then test_new. fewshot: one
        run per (row, dataset, seed, shots). xd and dg: per (row, seed), the
        source training, then the evaluation of that model on every target.
        """
        if self.protocol == "base2new":
            return [[self.base2new_run(row, d, s, phase) for phase in BASE2NEW_SCRIPTS]
                    for row in self.rows for d in self.datasets for s in self.seeds]
        if self.protocol == "fewshot":
            return [[self.fewshot_run(row, d, s, k)] for row in self.rows for d in self.datasets for s in self.seeds
                    for k in ([0] if row.is_zero_shot else self.shots)]
        return [[self.fewshot_run(row, self.source, s, self.shots[0], row.config_for(self.source))]
                + [self.target_run(row, t, s) for t in self.datasets] for row in self.rows for s in self.seeds]

    def runs(self):
        return [run for job in self.jobs() for run in job]


# ----------------------------------------------------------------------------- arguments


def closest_hint(name, choices):
    match = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def registered_method(name, configs_dir):
    """A trainer outside the method table, known by its configs/trainers/<name>/ folder."""
    folder = configs_dir / "trainers" / name
    if not folder.is_dir():
        return None
    configs = sorted(p.stem for p in folder.glob("*.yaml"))
    return Method(None, name, configs[0] if len(configs) == 1 else "")


def parse_rows(specs, configs_dir, methods=METHODS):
    """`Trainer` or `Trainer:cfg` -> Rows, in the order given. A trainer outside
    the method table needs a configs/trainers/<Trainer>/ folder (and :cfg when
    that folder holds several configs)."""
    rows = []
    for spec in specs:
        name, _, config = spec.partition(":")
        method = methods.get(name) or registered_method(name, configs_dir)
        if method is None:
            known = list(methods) + sorted(p.name for p in (configs_dir / "trainers").glob("*") if p.is_dir())
            raise SweepError(
                f"unknown trainer '{name}'{closest_hint(name, known)}; the method table of tools/sweep.py knows: "
                f"{', '.join(methods)}; a trainer of your own needs its configs under {configs_dir / 'trainers' / name}/"
            )
        if not (config or method.config):
            raise SweepError(
                f"trainer '{name}' has several configs under {configs_dir / 'trainers' / name}/: "
                f"name one as {name}:CFG"
            )
        family = CONFIG_FAMILIES.get(config)
        if family is not None and method.trainer not in family:
            raise SweepError(
                f"{spec}: config family '{config}' has no configs for trainer {method.trainer} "
                f"(it has: {', '.join(family)}); name one of its configs as {name}:CFG"
            )
        rows.append(Row(name, method, config or method.config, explicit=bool(config)))
    return rows


GENERIC_FOLDER_CONFIG = "image_folder"  # configs/datasets/image_folder.yaml: DATASET.FOLDER comes as an opt


def check_arguments(protocol, seeds, shots, datasets, plot):
    """The argument values no run could use, refused before planning."""
    negative = [s for s in seeds if s < 0]
    if negative:
        raise SweepError(f"--seeds {negative[0]}: seeds are integers of 0 or more, e.g. --seeds 1 2 3")
    small = [k for k in shots if k < 1]
    if small:
        raise SweepError(f"--shots {small[0]}: shots per class must be 1 or more, e.g. --shots 16")
    if protocol != "fewshot" and len(shots) != 1:
        raise SweepError(f"--shots {' '.join(map(str, shots))}: {protocol} runs one shot count; give one value")
    for dataset in datasets:
        if not PLAIN_NAME.fullmatch(dataset):
            raise SweepError(
                f"--datasets {dataset}: give a dataset config stem (letters, digits, _ and -, e.g. eurosat), "
                "not a path: run folders are named after it"
            )
    if GENERIC_FOLDER_CONFIG in datasets:
        raise SweepError(
            f"--datasets {GENERIC_FOLDER_CONFIG}: runs are named after the dataset config, so every own folder "
            "would share one run folder; give each folder its own two-line config configs/datasets/<name>.yaml "
            "(NAME ImageFolderDataset, FOLDER <name>) and pass --datasets <name> (DATASETS.md, own image folder)"
        )
    if plot and Path(plot).suffix.lower() not in PLOT_SUFFIXES:
        raise SweepError(f"--plot {plot}: give an image file ending in {', '.join(PLOT_SUFFIXES)}, e.g. results.png")


def scripts_name_trainer_dir(scripts_dir):
    """Whether the scripts put runs under $TRAINER_DIR (needed by plug-in rows,
    whose folder name differs from the trainer the scripts launch)."""
    return any("TRAINER_DIR" in path.read_text(errors="replace") for path in scripts_dir.rglob("*.sh"))


def check_plan(plan):
    """Every problem that would make runs fail, reported before any run starts."""
    if not plan.data_root.is_dir():
        raise SweepError(f"--root {plan.data_root} is not a directory; pass the folder that holds the dataset folders")
    runs = plan.runs()
    for run in runs:
        if not run.script.is_file():
            raise SweepError(f"{run.row.name}: script {run.script} does not exist; check --scripts-dir or the method table")
    dataset_configs = plan.configs_dir / "datasets"
    for dataset in dict.fromkeys(run.dataset for run in runs):
        if not (dataset_configs / f"{dataset}.yaml").is_file():
            known = sorted(p.stem for p in dataset_configs.glob("*.yaml"))
            raise SweepError(
                f"unknown dataset '{dataset}'{closest_hint(dataset, known)}: "
                f"{dataset_configs / (dataset + '.yaml')} does not exist"
            )
    for row, config in dict.fromkeys((run.row, run.config) for run in runs):
        folder = plan.configs_dir / "trainers" / row.method.configs
        if not (folder / f"{config}.yaml").is_file():
            known = sorted(p.stem for p in folder.glob("*.yaml"))
            raise SweepError(
                f"{row.name}: unknown config '{config}'{closest_hint(config, known)}: "
                f"{folder / (config + '.yaml')} does not exist"
            )
    for target in plan.imports:
        if target.endswith(".py") and not Path(target).is_file():
            raise SweepError(f"--import {target}: no such file; give a .py file or a dotted module name")
    plugins = [row.name for row in plan.rows if row.is_plugin]
    if plugins and not scripts_name_trainer_dir(plan.scripts_dir):
        raise SweepError(
            f"rows {', '.join(plugins)} need scripts that name the <Trainer> folder after $TRAINER_DIR, "
            f"and no script under {plan.scripts_dir} uses TRAINER_DIR; without it their runs would land "
            "in the plain trainer's folder"
        )


def plan_from_args(args):
    if args.jobs < 1:
        raise SweepError(f"--jobs {args.jobs}: give at least 1")
    if args.gpus and args.jobs != 1:
        raise SweepError("--gpus already runs one run per GPU in parallel; drop --jobs")
    if len(args.opts) % 2:
        raise SweepError(f"--opts takes KEY VALUE pairs; got an odd number of items: {' '.join(args.opts)}")
    shots = args.shots or (list(FEWSHOT_SHOTS) if args.protocol == "fewshot" else [16])
    datasets = args.datasets or default_datasets(args.protocol, args.source)
    check_arguments(args.protocol, args.seeds, shots, datasets + [args.source], args.plot)
    scripts_dir = Path(os.path.abspath(args.scripts_dir))  # not resolved: a linked scripts folder keeps its checkout
    return Plan(
        rows=parse_rows(args.trainers, scripts_dir.parent / "configs"),
        datasets=list(dict.fromkeys(datasets)),
        seeds=list(dict.fromkeys(args.seeds)),
        shots=list(dict.fromkeys(shots)),
        data_root=Path(args.root).resolve(),
        output=Path(args.output).resolve(),
        scripts_dir=scripts_dir,
        slots=list(args.gpus) if args.gpus else [None] * args.jobs,
        opts=args.opts,
        protocol=args.protocol,
        source=args.source,
        imports=[str(Path(t).resolve()) if t.endswith(".py") else t for t in args.imports],
    )
