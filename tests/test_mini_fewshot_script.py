"""scripts/mini_fewshot.sh plans the few-shot protocol on the mini world: every
trainer, 1/2/4/8/16 shots, 3 seeds, both mini datasets, a figure; every config exists, and the
mini_fewshot family gives 8 and 16 shots shorter schedules than 1-4 shots."""
import os
import shlex
import stat
import subprocess

from tests.helpers.trainer_runs import REPO
from tools import sweep
from tools.sweeping.plan import check_plan

RECORDER = """#!/usr/bin/env bash
# Stands in for python: records the sweep's argv; `build_mini_world.py extract` prints the data root.
case "$1" in
    *build_mini_world.py) echo "{root}" ;;
    *) printf '%q ' "$@" > "{record}" ;;
esac
"""


def test_mini_fewshot_plans_every_trainer_shot_and_seed(tmp_path):
    record = tmp_path / "argv.txt"
    python = tmp_path / "python"
    python.write_text(RECORDER.format(root=tmp_path, record=record))
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PYTHON=str(python), OUTPUT=str(tmp_path / "out"))
    subprocess.run(["bash", os.path.join(REPO, "scripts/mini_fewshot.sh")], env=env, check=True)
    argv = shlex.split(record.read_text())[1:]
    args = sweep.build_parser().parse_args(argv)
    plan = sweep.plan_from_args(args)
    check_plan(plan)
    assert plan.protocol == "fewshot" and plan.shots == [1, 2, 4, 8, 16] and plan.seeds == [1, 2, 3]
    assert plan.datasets == ["mini_fashion_mnist", "mini_clipart"]
    trained = {row.name for row in plan.rows if not row.is_zero_shot}
    assert trained == {"CoOp", "CoCoOp", "KgCoOp", "DPT", "VLP", "VPT", "TGPT", "TextRefiner", "KgCoOp+TextRefiner"}
    configs = {(run.row.name, run.shots): run.config for run in plan.runs()}
    assert [configs["CoOp", k] for k in (1, 2, 4, 8, 16)] == ["mini", "mini", "mini", "mini_ep10", "mini_ep5"]
    assert configs["KgCoOp+TextRefiner", 16] == "mini_ep5" and configs["ZeroshotCLIP", 0] == "mini"
    assert [configs["CoCoOp", k] for k in (1, 2, 4, 8, 16)] == ["mini", "mini_ep5", "mini_ep2", "mini_ep1", "mini_ep1"]
    assert {configs["TGPT", k] for k in (1, 2, 4, 8, 16)} == {"mini_it40"}
    assert len(plan.runs()) == 9 * 2 * 3 * 5 + 2 * 3  # zero-shot: once per dataset and seed
    assert args.plot.endswith(".png") and args.warm
