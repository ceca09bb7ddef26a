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

A run whose folder holds done.json and a run.json that agrees with the sweep's
trainer, seed, shots, class half and opts is skipped; any other run goes to its
script (train.py returns a finished run's result, refuses a folder of another
run, and resumes an unfinished one from its last checkpoint), so a killed sweep is resumed by
running the same command again. A failing run is reported with its log and the
sweep goes on; a run that exits PREEMPTED (85) or RUN_LOCKED (86, its folder is
in use by another sweep) is reported as such. The exit status is 1 when any run
failed, 2 on bad arguments, 130 after Ctrl-C or SIGTERM (which stop every run in
order; a sweep killed outright takes its runs with it, see tools/sweeping/).

    python tools/sweep.py ... --slurm [--slurm-partition P --slurm-time MIN ...]   # one Slurm job per seed
    python tools/sweep.py ... --status                                             # done/running/pending/failed
"""
import argparse
import ast
import contextlib
import os
import queue
import shlex
import shutil
import signal
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
from tools.sweeping.children import ChildGroups, load_exit_codes  # noqa: E402
from tools.sweeping import slurm  # noqa: E402
from tools.sweeping.devices import GpuError, check_gpu_ids  # noqa: E402
from tools.sweeping.plan import (  # noqa: E402, F401  (the planning side, re-exported: what runs, checked up front)
    METHODS, Method, Plan, Row, Run, SweepError, check_plan, parse_rows, plan_from_args,
)
from tools.sweeping.protocols import DEFAULT_SOURCE, PROTOCOLS  # noqa: E402

exit_codes = load_exit_codes()


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
    env["PYTHON"] = sys.executable
    env.update(plan.python or {})
    return env


CHILDREN = ChildGroups()


def run_script(argv, env, console_path):
    """Run one script, in its own process group, with its output appended to console_path; return its exit status."""
    console_path.parent.mkdir(parents=True, exist_ok=True)
    with open(console_path, "a") as console:
        console.write(f"$ {shlex.join(argv)}\n")
        console.flush()
        return CHILDREN.run(argv, env=env, stdout=console, stderr=subprocess.STDOUT)


def tail(path, lines=8):
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


@dataclass
class Outcome:
    run: Run
    status: str  # one of STATUSES
    message: str = ""


STATUSES = ("done", "skipped", "failed", "not run", "running elsewhere", "preempted")
NOT_FINISHED = ("failed", "not run", "running elsewhere", "preempted", "interrupted")


def is_done(run_dir):
    """A valid done.json (the parser's test: a corrupt one is not finished); torch is imported
    only once the file exists, so a fresh sweep starts at once."""
    if not (run_dir / "done.json").is_file():
        return False
    from dassl.utils import is_run_done

    return is_run_done(str(run_dir))


def config_value(text):
    """A --opts value as the config holds it (yacs reads values as Python literals)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    return list(value) if isinstance(value, tuple) else value


def expected_config(plan, run):
    """The config keys the sweep itself decides for `run`: trainer, seed, shots, classes and opts."""
    opts = list(run.row.method.opts) + list(plan.opts)
    expected = {"TRAINER.NAME": run.row.method.trainer, "SEED": run.seed}
    if run.phase in ("train_base", "test_new"):
        expected.update({"DATASET.NUM_SHOTS": run.shots,
                         "DATASET.SUBSAMPLE_CLASSES": "base" if run.phase == "train_base" else "new"})
    else:  # few-shot training on all classes, or an evaluation on a target (xd / dg)
        expected["DATASET.SUBSAMPLE_CLASSES"] = "all"
        if run.phase == "fewshot" and run.row.method.trainer != "ZeroshotCLIP":
            expected["DATASET.NUM_SHOTS"] = run.shots
    expected.update((key, config_value(value)) for key, value in zip(opts[::2], opts[1::2]))
    return expected


def is_same_finished_run(plan, run):
    """Skip only a finished folder whose run.json agrees with what the sweep sets (and, for a
    base-to-new test run, names its training run's run.json); any other folder goes to its
    script, and train.py returns its result or refuses another run's folder. torch is imported
    only once a finished folder exists, so a fresh sweep starts at once."""
    if not is_done(run.run_dir):
        return False
    from dassl.engine.run_fingerprint import FINISHED, RUN_FILE, run_folder_state
    from dassl.utils import file_sha256

    expected = {"config": expected_config(plan, run)}
    if run.phase == "test_new":
        trained = plan.base2new_run(run.row, run.dataset, run.seed, "train_base").run_dir / RUN_FILE
        expected["eval"] = {"model_run": file_sha256(trained) if trained.is_file() else None}
    return run_folder_state(str(run.run_dir), expected)[0] == FINISHED


def script_argv(plan, run):
    return ["bash", str(run.script), *run.args]


def execute_run(plan, run, slot, runner):
    if is_same_finished_run(plan, run):
        return Outcome(run, "skipped")
    console = run.run_dir / "sweep_console.txt"
    started = time.time()
    code = runner(script_argv(plan, run), run_environment(plan, run, slot), console)
    if code == 0 and is_done(run.run_dir):
        return Outcome(run, "done", f"{time.time() - started:.1f} s")
    if CHILDREN.stopping.is_set():
        return Outcome(run, "interrupted")
    if code == exit_codes.RUN_LOCKED:
        return Outcome(run, "running elsewhere", "another process holds its run folder")
    if code == exit_codes.PREEMPTED:
        return Outcome(run, "preempted", "stopped by a signal with its state saved; run the sweep again to resume it")
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
            if outcome.status == "interrupted":
                return
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
                if outcomes and outcomes[-1].status in NOT_FINISHED:
                    outcome = Outcome(run, "not run", f"its train_base run is {outcomes[-1].status}")
                elif CHILDREN.stopping.is_set():
                    outcome = Outcome(run, "interrupted")
                else:
                    outcome = execute_run(plan, run, slot, runner)
                outcomes.append(outcome)
                progress.step(outcome)
            return outcomes
        finally:
            free_slots.put(slot)

    pool = ThreadPoolExecutor(max_workers=len(plan.slots))
    try:
        results = list(pool.map(run_job, jobs))
    except KeyboardInterrupt:
        stop_everything()
        raise
    finally:
        pool.shutdown(cancel_futures=True)
        progress.close()
    return [outcome for outcomes in results for outcome in outcomes]


def print_summary(outcomes):
    counts = {status: sum(o.status == status for o in outcomes) for status in STATUSES}
    print("Sweep: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in STATUSES[:4]))
    for outcome in outcomes:
        if outcome.status in ("failed", "running elsewhere", "preempted"):
            print(f"  {outcome.status.upper()} {outcome.run.label}: {outcome.message.splitlines()[0]}")


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


WARM_FOLDER_PREFIX = "sweep_warm_"


def remove_orphaned_warm_folders(parent):
    """`sweep_warm_<pid>_*` folders whose sweep is gone (one its guardian could not remove)."""
    for folder in Path(parent).glob(f"{WARM_FOLDER_PREFIX}*_*"):
        owner = folder.name[len(WARM_FOLDER_PREFIX):].split("_", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists() and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def warm_python(enabled):
    """With --warm: the environment that makes the scripts' `$PYTHON` a warm-start client."""
    if not enabled:
        yield {}
        return
    from tools.warm_start import SOCKET_ENV, WarmServer, write_client_launcher

    remove_orphaned_warm_folders(tempfile.gettempdir())
    folder = tempfile.mkdtemp(prefix=f"{WARM_FOLDER_PREFIX}{os.getpid()}_")
    CHILDREN.remove_on_crash(folder)
    server = WarmServer(os.path.join(folder, "socket")).start()
    CHILDREN.add(server.pid)
    try:
        yield {"PYTHON": write_client_launcher(folder), SOCKET_ENV: server.socket_path}
    finally:
        server.stop()
        CHILDREN.discard(server.pid)
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
    add_slurm_arguments(parser)
    return parser


def add_slurm_arguments(parser):
    group = parser.add_argument_group("Slurm", "run every (trainer, dataset, seed) as a Slurm job (needs .[slurm])")
    group.add_argument("--slurm", action="store_true", help="submit the unfinished runs to Slurm and wait for them")
    group.add_argument("--status", action="store_true", help="show done / running / pending / failed runs and exit")
    group.add_argument("--slurm-defaults", metavar="FILE",
                       help="site defaults (YAML: partition, account, time, gpus, cpus, mem_gb, signal_delay_s, "
                            "setup); default ~/.config/clip-prompt-toolkit/slurm.yaml if it exists")
    group.add_argument("--slurm-partition")
    group.add_argument("--slurm-account")
    group.add_argument("--slurm-time", type=int, metavar="MINUTES", help="time limit of a job (default 1440)")
    group.add_argument("--slurm-gpus", type=int, help="GPUs per job (default 0)")
    group.add_argument("--slurm-cpus", type=int, help="CPUs per job (default 1)")
    group.add_argument("--slurm-mem", type=float, metavar="GB", help="memory per job")


def slurm_settings(args):
    flags = {"partition": args.slurm_partition, "account": args.slurm_account, "time": args.slurm_time,
             "gpus": args.slurm_gpus, "cpus": args.slurm_cpus, "mem_gb": args.slurm_mem}
    return slurm.settings_from(flags, args.slurm_defaults)


def slurm_steps(plan):
    """Job -> the ScriptSteps its Slurm job runs (the local sweep's command lines, without a GPU slot)."""

    def sweep_variables(run):
        """What the sweep adds to the environment; the node's own (its CUDA_VISIBLE_DEVICES, SLURM_*) stays."""
        return {k: v for k, v in run_environment(plan, run, None).items() if os.environ.get(k) != v}

    def steps_of(job):
        return [slurm.ScriptStep(script_argv(plan, run), sweep_variables(run), run.run_dir / "sweep_console.txt",
                                 run.run_dir) for run in job]

    return steps_of


INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_everything():
    """After Ctrl-C or SIGTERM: no second signal interrupts the stopping of every run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    CHILDREN.stop_all()


def run_stoppable(plan, warm):
    """run_jobs, with Ctrl-C and SIGTERM stopping every run in order (KeyboardInterrupt
    reaches the caller once they have stopped) and a guardian for a sweep killed outright."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, raise_interrupt)
    CHILDREN.stopping.clear()
    CHILDREN.start_guardian()
    try:
        with warm_python(warm) as python_env:
            plan.python = python_env
            return run_jobs(plan)
    finally:
        CHILDREN.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        plan = plan_from_args(args)
        check_plan(plan)
        if args.status:
            print("\n".join(slurm.status(plan, is_done)))
            return 0
        if args.slurm and (args.gpus or args.warm or args.jobs != 1):
            raise SweepError("--slurm gives every job its own allocation: drop --gpus, --warm and --jobs "
                             "(--slurm-gpus sets the GPUs per job)")
        if args.gpus:
            check_gpu_ids(args.gpus)
        if args.slurm:
            settings = slurm_settings(args)
            slurm.check_slurm_tools()
    except (SweepError, GpuError, slurm.SlurmError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        if args.slurm:
            outcomes = slurm.run_on_slurm(plan, settings, slurm_steps(plan), is_done, Outcome)
        else:
            outcomes = run_stoppable(plan, args.warm)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return INTERRUPTED
    print_summary(outcomes)
    report(plan, args.out_prefix, args.plot)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
