"""The sweep's Slurm backend: one job per (row, dataset, seed), submitted through submitit.

A job runs the same per-method scripts as a local sweep (train_base, then
test_new) on its node; its submitit folder (sbatch script, logs, job id) is
`<train_base run folder>/slurm/`. Before its time limit or on preemption Slurm
sends SIGUSR1 (`--signal`, submitit's default): the job stops its run (train.py
exits with exit_codes.PREEMPTED after the step in progress, its state after
that step saved) and submitit requeues it; the requeued job resumes the run. On a re-run
of the sweep, finished runs are skipped and jobs still in the queue are not
submitted again. `status()` reads the output tree and `squeue`.
"""
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .children import ChildGroups

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULTS_FILE = Path("~/.config/clip-prompt-toolkit/slurm.yaml").expanduser()
SETTINGS = ("partition", "account", "time", "gpus", "cpus", "mem_gb", "signal_delay_s", "setup")
PENDING_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "CONFIGURING")
POLL_SECONDS = 2.0
PREEMPT_SIGNAL = "USR1"  # what Slurm sends before the time limit / preemption, and what train.py stops on


class SlurmError(Exception):
    """Slurm settings or tools that cannot work, found before any job is submitted."""


@dataclass
class SlurmSettings:
    """sbatch settings of every job: --slurm-* flags over the site defaults file."""

    partition: str = None
    account: str = None
    time: int = 60 * 24  # minutes
    gpus: int = 0
    cpus: int = 1
    mem_gb: float = None
    signal_delay_s: int = 90
    setup: list = field(default_factory=list)

    def executor_parameters(self):
        """submitit SlurmExecutor parameters."""
        setup = [f"export PYTHONPATH={REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}",
                 f"export SUBMITIT_PREEMPT_SIGNAL={PREEMPT_SIGNAL}", *self.setup]
        parameters = dict(time=self.time, cpus_per_task=self.cpus, signal_delay_s=self.signal_delay_s, setup=setup)
        if self.gpus:
            parameters["gpus_per_node"] = self.gpus
        if self.mem_gb:
            parameters["mem"] = f"{int(self.mem_gb * 1024)}MB"
        for name in ("partition", "account"):
            if getattr(self, name):
                parameters[name] = getattr(self, name)
        return parameters


def read_defaults(path):
    """The site defaults file (YAML mapping of SETTINGS), or {} when the default file does not exist."""
    import yaml

    if path is None:
        path = DEFAULTS_FILE
        if not path.is_file():
            return {}
    path = Path(path)
    if not path.is_file():
        raise SlurmError(f"--slurm-defaults {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise SlurmError(f"{path} must be a YAML mapping of {', '.join(SETTINGS)}")
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise SlurmError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    return values


def settings_from(flags, defaults_path):
    """Flags (None = not given) over the defaults file over the built-in defaults."""
    values = read_defaults(defaults_path)
    values.update({name: value for name, value in flags.items() if value is not None})
    settings = SlurmSettings(**values)
    for name in ("time", "cpus"):
        if not isinstance(getattr(settings, name), int) or getattr(settings, name) < 1:
            raise SlurmError(f"Slurm {name} must be a whole number >= 1; got {getattr(settings, name)!r}")
    return settings


def check_slurm_tools():
    missing = [tool for tool in ("sbatch", "squeue") if not shutil.which(tool)]
    if missing:
        raise SlurmError(f"--slurm needs Slurm's {' and '.join(missing)} on PATH; run the sweep on a Slurm login node")
    try:
        import submitit  # noqa: F401
    except ImportError as error:
        raise SlurmError("--slurm needs submitit: pip install -e '.[slurm]'") from error


# ----------------------------------------------------------------------------- on the node


@dataclass
class ScriptStep:
    """One run of a job, as the local sweep would run it."""

    argv: list
    env: dict  # the sweep's variables, set over the node's environment
    console: Path
    run_dir: Path


class RunsJob:
    """The callable submitit runs on the node: the job's scripts in order, each skipped once done.

    `checkpoint` (submitit calls it on SIGUSR1) stops the script in progress (its run saves and
    exits with PREEMPTED) and hands submitit this job again, to requeue.
    """

    def __init__(self, steps):
        self.steps = steps
        self._children = None

    def __getstate__(self):
        return {"steps": self.steps, "_children": None}

    def __call__(self):
        from tools.sweep import is_done, tail

        self._children = ChildGroups()
        for step in self.steps:
            if is_done(step.run_dir):
                continue
            step.console.parent.mkdir(parents=True, exist_ok=True)
            with open(step.console, "a") as console:
                env = {**os.environ, **step.env}
                code = self._children.run(step.argv, env=env, stdout=console, stderr=subprocess.STDOUT)
            if code != 0 or not is_done(step.run_dir):
                raise RuntimeError(f"{step.run_dir}: exit status {code}\n{tail(step.console)}")
        return "done"

    def checkpoint(self, *args, **kwargs):
        import submitit

        if self._children is not None:
            self._children.stop_all()
        return submitit.helpers.DelayedSubmission(RunsJob(self.steps))


# ----------------------------------------------------------------------------- on the login node


def job_folder(job):
    return job[0].run_dir / "slurm"


def read_job_id(job):
    try:
        return (job_folder(job) / "job_id").read_text().strip() or None
    except OSError:
        return None


def queue_states():
    """{job id: state} of the jobs in Slurm's queue."""
    result = subprocess.run(["squeue", "-h", "-o", "%i|%T"], capture_output=True, text=True)
    if result.returncode != 0:
        raise SlurmError(f"squeue failed: {result.stderr.strip()}")
    return dict(line.split("|", 1) for line in result.stdout.split() if "|" in line)


def submit(plan, job, settings, steps_of):
    """Submit one job; its id is kept in its folder so a re-run does not submit it again."""
    import submitit
    from submitit.slurm.slurm import SlurmJobEnvironment

    SlurmJobEnvironment.USR_SIG = PREEMPT_SIGNAL  # the --signal of the sbatch script (submitit's default: USR2)
    folder = job_folder(job)
    executor = submitit.SlurmExecutor(folder=folder, python=sys.executable)
    executor.update_parameters(job_name=f"sweep {job[0].label}", **settings.executor_parameters())
    submitted = executor.submit(RunsJob(steps_of(job)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job_id").write_text(f"{submitted.job_id}\n")
    return submitted.job_id


def job_state(job, queued, is_done):
    """done / pending / running / failed / not submitted, from the output tree and the queue."""
    if all(is_done(run.run_dir) for run in job):
        return "done"
    job_id = read_job_id(job)
    if job_id is None:
        return "not submitted"
    state = queued.get(job_id)
    if state is None:
        return "failed"
    return "pending" if state in PENDING_STATES else "running"


def run_on_slurm(plan, settings, steps_of, is_done, outcome):
    """Submit the unfinished jobs that are not queued, wait until none is queued; returns the outcomes."""
    jobs = plan.jobs()
    queued = queue_states()
    waiting = set()
    for job in jobs:
        state = job_state(job, queued, is_done)
        if state in ("pending", "running"):
            waiting.add(read_job_id(job))
        elif state != "done":
            waiting.add(submit(plan, job, settings, steps_of))
    print(f"Slurm: {len(waiting)} job(s) queued, {len(jobs) - len(waiting)} finished; waiting (Ctrl-C leaves them running)")
    while waiting & set(queue_states()):
        time.sleep(POLL_SECONDS)
    outcomes = []
    for job in jobs:
        log = job_folder(job)
        for run in job:
            if is_done(run.run_dir):
                outcomes.append(outcome(run, "done"))
            else:
                outcomes.append(outcome(run, "failed", f"unfinished after its Slurm job; see the logs in {log}"))
    return outcomes


def status(plan, is_done):
    """Lines of the status view: counts, then every job that is not done."""
    jobs = plan.jobs()
    try:
        queued = queue_states() if shutil.which("squeue") else {}
    except SlurmError:
        queued = {}
    states = [(job, job_state(job, queued, is_done)) for job in jobs]
    order = ("done", "running", "pending", "failed", "not submitted")
    lines = ["Status: " + ", ".join(f"{sum(s == name for _, s in states)} {name}" for name in order)]
    for job, state in states:
        if state != "done":
            job_id = read_job_id(job)
            lines.append(f"  {state.upper()} {job[0].label}" + (f" (job {job_id}, logs in {job_folder(job)})" if job_id else ""))
    return lines
