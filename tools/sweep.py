"""The sweep of every protocol: trainers x datasets x seeds (x shots), ending
with the protocol's tables (`parse_test_res.py --base2new/--fewshot/--xd/--dg`).

    python tools/sweep.py --root DATA --trainers CoOp CoCoOp KgCoOp:vit_b16_ep100_ctxv1 \\
        --datasets eurosat dtd --seeds 1 2 3 [--shots 16] [--output output] \\
        [--gpus 0 1 | --jobs N] [--opts OPTIM.MAX_EPOCH 2] [--plot output/base2new.png]
    python tools/sweep.py --protocol fewshot --root DATA --trainers CoOp DPT [--shots 1 2 4 8 16]
    python tools/sweep.py --protocol xd|dg --root DATA --trainers CoOp CoCoOp [--source imagenet]
    python tools/sweep.py --root DATA --trainers MyTrainer:my_cfg --import my_trainer.py

Base-to-new runs of built-in rows go through `scripts/<method>/base2new_{train,test}.sh
DATASET SEED CFG`; every other run through the generic `scripts/protocol.sh` (see
tools/sweeping/plan.py). The scripts build the train.py command lines; the sweep
only chooses what to run, where, and in which order. It passes DATA, OUTPUT,
SHOTS, EXTRA_OPTS (the row's plug-in opts + --opts), TRAINER_DIR (the row name,
the <Trainer> folder) and CUDA_VISIBLE_DEVICES (with --gpus).

A run whose folder holds done.json is skipped; any other run is (re)started and
the engine resumes from its last checkpoint, so a killed sweep is resumed by
running the same command again. A failing run is reported with its log and the
sweep goes on; the exit status is 1 when any run failed, 2 on bad arguments.
"""
import argparse
import contextlib
import os
import queue
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from tools.sweeping.plan import (  # noqa: E402, F401  (the planning side, re-exported: what runs, checked up front)
    METHODS, Method, Plan, Row, Run, SweepError, check_plan, parse_rows, plan_from_args,
)
from tools.sweeping.protocols import DEFAULT_SOURCE, PROTOCOLS  # noqa: E402


# ----------------------------------------------------------------------------- running


def run_environment(plan, run, slot):
    env = dict(os.environ)
    env.update(
        DATA=str(plan.data_root),
        OUTPUT=str(plan.output),
        SHOTS=str(run.shots),
        EXTRA_OPTS=shlex.join(list(run.row.method.opts) + list(plan.opts)),
        TRAINER_DIR=run.row.name,
    )
    if slot is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot
    env.update(plan.python or {})
    return env


def run_script(argv, env, console_path):
    """Run one script with its output appended to console_path; return its exit status."""
    console_path.parent.mkdir(parents=True, exist_ok=True)
    with open(console_path, "a") as console:
        console.write(f"$ {shlex.join(argv)}\n")
        console.flush()
        return subprocess.run(argv, env=env, stdout=console, stderr=subprocess.STDOUT).returncode


def tail(path, lines=8):
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


@dataclass
class Outcome:
    run: Run
    status: str  # "done", "skipped", "failed", "not run"
    message: str = ""


def is_done(run_dir):
    """The scripts' own test (`[ -f done.json ]`), so sweep and scripts skip the
    same runs; kept torch-free so that a restarted sweep starts at once."""
    return (run_dir / "done.json").is_file()


def execute_run(plan, run, slot, runner):
    if is_done(run.run_dir):
        return Outcome(run, "skipped")
    console = run.run_dir / "sweep_console.txt"
    argv = ["bash", str(run.script), *run.args]
    started = time.time()
    code = runner(argv, run_environment(plan, run, slot), console)
    if code == 0 and is_done(run.run_dir):
        return Outcome(run, "done", f"{time.time() - started:.1f} s")
    log = run.run_dir / "log.txt"
    why = f"exit status {code}" if code != 0 else "the script exited 0 but wrote no done.json"
    where = log if log.is_file() else console
    return Outcome(run, "failed", f"{why}; see {where}\n{tail(console)}")


class Progress:
    """A tqdm bar over runs; failures are written above it as they happen."""

    def __init__(self, total):
        self.lock = threading.Lock()
        self.bar = tqdm(total=total, unit="run", dynamic_ncols=True)

    def step(self, outcome):
        with self.lock:
            if outcome.status == "failed":
                self.bar.write(f"FAILED {outcome.run.label}: {outcome.message}", file=sys.stderr)
            self.bar.set_postfix_str(f"{outcome.status} {outcome.run.label}", refresh=False)
            self.bar.update(1)

    def close(self):
        self.bar.close()


def run_jobs(plan, runner=run_script):
    """Run every job, one per slot at a time (a slot is a GPU id, or None on
    CPU); a job's test waits for its training and is not run if that failed."""
    jobs = plan.jobs()
    progress = Progress(sum(len(job) for job in jobs))
    free_slots = queue.Queue()
    for slot in plan.slots:
        free_slots.put(slot)

    def run_job(job):
        slot = free_slots.get()
        try:
            outcomes = []
            for run in job:
                if outcomes and outcomes[-1].status in ("failed", "not run"):
                    outcome = Outcome(run, "not run", "its train_base run failed")
                else:
                    outcome = execute_run(plan, run, slot, runner)
                outcomes.append(outcome)
                progress.step(outcome)
            return outcomes
        finally:
            free_slots.put(slot)

    with ThreadPoolExecutor(max_workers=len(plan.slots)) as pool:
        results = list(pool.map(run_job, jobs))
    progress.close()
    return [outcome for outcomes in results for outcome in outcomes]


def print_summary(outcomes):
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed", "not run")}
    print("Sweep: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"  FAILED {outcome.run.label}: {outcome.message.splitlines()[0]}")


def report(plan, out_prefix=None, plot_path=None):
    """The tables of exactly this sweep's runs."""
    from parse_test_res import ParseError, report_base2new
    from reporting.protocol_report import report_protocol

    wanted = {(run.row.name, run.config, run.dataset, run.shots, run.seed) for run in plan.runs()}
    try:
        if plan.protocol != "base2new":
            return report_protocol(plan.protocol, str(plan.output), out_prefix=out_prefix, plot_path=plot_path,
                                   select=lambda key: key in wanted, source=plan.source)

        def select(trainer, config, shots, dataset, seed):
            return (trainer, config, dataset, shots, seed) in wanted

        return report_base2new(str(plan.output), out_prefix=out_prefix, plot_path=plot_path, select=select)
    except ParseError as error:
        print(f"error: no table: {error}", file=sys.stderr)
        return None


@contextlib.contextmanager
def warm_python(enabled):
    """With --warm: the environment that makes the scripts' `$PYTHON` a warm-start client."""
    if not enabled:
        yield {}
        return
    from tools.warm_start import SOCKET_ENV, WarmServer, write_client_launcher

    folder = tempfile.mkdtemp(prefix="sweep_warm_")
    server = WarmServer(os.path.join(folder, "socket")).start()
    try:
        yield {"PYTHON": write_client_launcher(folder), SOCKET_ENV: server.socket_path}
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- command line


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="dataset root (DATA)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="base2new",
                        help="base2new (default); fewshot: all classes over --shots; xd: train on --source, "
                             "test on other datasets; dg: train on --source, test on ImageNet-V2/-Sketch/-A/-R")
    parser.add_argument("--trainers", nargs="+", required=True, metavar="TRAINER[:CFG]",
                        help=f"rows of the method table: {', '.join(METHODS)}; or a trainer of your own "
                             "with configs under configs/trainers/<TRAINER>/")
    parser.add_argument("--datasets", nargs="+", help="dataset config stems, e.g. eurosat dtd (xd and dg: the "
                        "targets); default: the 11 benchmarks, the 10 other than the source, or the 4 ImageNet variants")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--shots", nargs="+", type=int,
                        help="shots per class: default 16; fewshot: 1 2 4 8 16 (xd and dg train on 16)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="xd and dg: the dataset trained on (default imagenet)")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="passed to every train.py run: a module or .py file registering your trainer; repeatable")
    parser.add_argument("--output", default="output", help="output root (OUTPUT), default ./output")
    parser.add_argument("--gpus", nargs="+", help="GPU ids: runs are spread over them, one run per GPU at a time")
    parser.add_argument("--jobs", type=int, default=1, help="parallel runs without --gpus (CPU)")
    parser.add_argument("--opts", nargs="+", default=[], help="extra yacs KEY VALUE pairs for every run")
    parser.add_argument("--scripts-dir", default=str(REPO_ROOT / "scripts"), help="folder of the per-method scripts")
    parser.add_argument("--out-prefix", help="tables as OUT_PREFIX.md/.csv (default OUTPUT/<protocol>_results)")
    parser.add_argument("--plot", metavar="PATH.png", help="also save the protocol's figure (base2new: Base/New/H "
                        "bars per trainer; fewshot: accuracy vs shots per dataset)")
    parser.add_argument("--warm", action="store_true",
                        help="start runs from one warm process (saves the import time of every run; "
                             "each run is still its own forked process)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        plan = plan_from_args(args)
        check_plan(plan)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with warm_python(args.warm) as python_env:
        plan.python = python_env
        outcomes = run_jobs(plan)
    print_summary(outcomes)
    report(plan, args.out_prefix, args.plot)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
