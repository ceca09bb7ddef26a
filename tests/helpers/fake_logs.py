"""Hand-written run folders in the engine's exact log format, for parser and
sweep tests that must not train anything.

Also runnable as a fake `train.py` run (used by the fake scripts of the sweep
tests): `python fake_logs.py RUN_DIR PHASE ACCURACY STEPS LEDGER TRAINER SEED`
writes run.json (the config keys the sweep sets, from SHOTS and EXTRA_OPTS),
one "epoch" file per step (resuming after the last one, like the engine
resumes from its last checkpoint), then the log and done.json, and appends
`start`/`finish` lines to LEDGER. Like train.py, it returns at once for a
finished folder of the same run and refuses (exit 1) a finished folder of
another run.
"""
import hashlib
import json
import os
import shlex
import shutil
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def evaluator_block(accuracy, decimals=2, total=10000):
    """`=> result` and the Classification evaluator's lines."""
    correct = round(accuracy * total / 100)
    return [
        "=> result",
        f"* total: {total:,}",
        f"* correct: {correct:,}",
        f"* accuracy: {accuracy:.{decimals}f}%",
        f"* error: {100 - accuracy:.{decimals}f}%",
        f"* macro_f1: {accuracy - 1:.{decimals}f}%",
    ]


def epoch_lines(epochs=2):
    return [
        f"epoch [{e}/{epochs}] batch [1/1] time 0.100 (0.100) data 0.010 (0.010) "
        f"loss {1.0 / e:.4f} ({1.0 / e:.4f}) acc 50.0000 (50.0000) lr 2.0000e-03 eta 0:00:01"
        for e in range(1, epochs + 1)
    ]


def train_log(accuracy, end_signal="Finish training", decimals=2, finished=True, val_accuracy=None):
    """A training log; `val_accuracy` adds a validation block before the end
    line (best_val runs), which parsers must ignore."""
    lines = ["Loading trainer: CoOp", "Building custom CLIP"] + epoch_lines()
    if val_accuracy is not None:
        lines += ["Evaluate on the *val* set"] + evaluator_block(val_accuracy, decimals)
    if finished:
        lines += [end_signal, "Deploy the last-epoch model", "Evaluate on the *test* set"]
        lines += evaluator_block(accuracy, decimals) + ["Elapsed: 0:00:05"]
    return "\n".join(lines) + "\n"


def eval_log(accuracy, decimals=2, finished=True):
    """An eval-only log (`--eval-only`), as test_new runs and zero-shot runs write."""
    lines = ["Loading trainer: CoOp", "Loading weights to prompt_learner from model.pth.tar-2 (epoch = 2)"]
    lines += ["Evaluate on the *test* set"]
    if finished:
        lines += evaluator_block(accuracy, decimals)
    return "\n".join(lines) + "\n"


def write_run(run_dir, log_text, done=True, accuracy=None):
    """A run folder with log.txt and, when `done`, the done.json marker."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "log.txt"), "w") as f:
        f.write(log_text)
    if done:
        with open(os.path.join(run_dir, "done.json"), "w") as f:
            json.dump({"results": {"accuracy": accuracy}}, f)
    return run_dir


def base2new_dir(root, phase, dataset, trainer, config, seed, shots=16):
    return os.path.join(root, "base2new", phase, dataset, f"shots_{shots}", trainer, config, f"seed{seed}")


def write_base2new_seed(root, dataset, trainer, config, seed, base, new, shots=16, zero_shot=False):
    """A finished train_base + test_new pair for one seed (`base`/`new` None = no run)."""
    if base is not None:
        text = eval_log(base) if zero_shot else train_log(base, val_accuracy=base - 5)
        write_run(base2new_dir(root, "train_base", dataset, trainer, config, seed, shots), text, accuracy=base)
    if new is not None:
        write_run(base2new_dir(root, "test_new", dataset, trainer, config, seed, shots), eval_log(new), accuracy=new)


def fewshot_dir(root, dataset, trainer, config, shots, seed):
    """A training run on all classes, in the CoOp repositories' layout (few-shot, and the xd/dg source)."""
    return os.path.join(root, dataset, trainer, f"{config}_{shots}shots", f"seed{seed}")


def evaluation_dir(root, trainer, config, shots, target, seed):
    """The source model of an xd/dg protocol evaluated on `target`."""
    return os.path.join(root, "evaluation", trainer, f"{config}_{shots}shots", target, f"seed{seed}")


def write_fewshot_seed(root, dataset, trainer, config, shots, seed, accuracy, zero_shot=False):
    text = eval_log(accuracy) if zero_shot else train_log(accuracy)
    return write_run(fewshot_dir(root, dataset, trainer, config, shots, seed), text, accuracy=accuracy)


def write_evaluation_seed(root, trainer, config, shots, target, seed, accuracy):
    return write_run(evaluation_dir(root, trainer, config, shots, target, seed), eval_log(accuracy), accuracy=accuracy)


def append_line(path, line):
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def fake_config(phase, trainer, seed):
    """The config keys a real run would record in run.json for what the sweep passes."""
    sys.path.insert(0, REPO_ROOT)
    from tools.sweep import config_value

    opts = shlex.split(os.environ.get("EXTRA_OPTS", ""))
    config = {"TRAINER.NAME": trainer, "SEED": int(seed), "DATASET.NUM_SHOTS": int(os.environ["SHOTS"]),
              "DATASET.SUBSAMPLE_CLASSES": "base" if phase == "train_base" else "new"}
    config.update((key, config_value(value)) for key, value in zip(opts[::2], opts[1::2]))
    return config


def fake_fingerprint(run_dir, phase, trainer, seed):
    """run.json's fingerprint: the config and, for a test run, the training run's run.json hash."""
    fingerprint = {"config": fake_config(phase, trainer, seed)}
    if phase == "test_new":
        train_dir = run_dir.replace(os.sep + "test_new" + os.sep, os.sep + "train_base" + os.sep)
        trained = os.path.join(train_dir, "run.json")
        with open(trained, "rb") as f:
            fingerprint["eval"] = {"model_run": hashlib.sha256(f.read()).hexdigest()}
    return fingerprint


def write_run_json(run_dir, fingerprint):
    """run.json as train.py writes it."""
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump({"format": 1, "fingerprint": fingerprint}, f)


def fake_train_py(run_dir, phase, accuracy, steps, ledger, trainer, seed):
    """train.py's folder decision, then `fake_run`."""
    fingerprint = fake_fingerprint(run_dir, phase, trainer, seed)
    if os.path.isfile(os.path.join(run_dir, "done.json")):
        with open(os.path.join(run_dir, "run.json")) as f:
            if json.load(f)["fingerprint"] == fingerprint:
                return
        sys.exit(f"error: {run_dir} holds another run")
    os.makedirs(run_dir, exist_ok=True)
    write_run_json(run_dir, fingerprint)
    fake_run(run_dir, phase, accuracy, steps, ledger)


def fake_run(run_dir, phase, accuracy, steps, ledger, step_seconds=0.02):
    """Behave like a resumable train.py run: steps survive a kill, the log and
    done.json are written last (done.json atomically). Ledger lines:
    `start|finish RUN_DIR GPU TIME` (GPU = CUDA_VISIBLE_DEVICES or -)."""
    os.makedirs(run_dir, exist_ok=True)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES") or "-"
    append_line(ledger, f"start {run_dir} {gpu} {time.time():.6f}")
    done_steps = len([n for n in os.listdir(run_dir) if n.startswith("step")])
    for step in range(done_steps, steps):
        time.sleep(step_seconds)
        open(os.path.join(run_dir, f"step{step}"), "w").close()
    text = train_log(accuracy) if phase == "train_base" else eval_log(accuracy)
    with open(os.path.join(run_dir, "log.txt"), "w") as f:
        f.write(text)
    temporary = os.path.join(run_dir, "done.json.tmp")
    with open(temporary, "w") as f:
        json.dump({"results": {"accuracy": accuracy}}, f)
    os.replace(temporary, os.path.join(run_dir, "done.json"))
    append_line(ledger, f"finish {run_dir} {gpu} {time.time():.6f}")


FAKE_SCRIPT = """#!/usr/bin/env bash
# Fake {script}: same arguments, environment and output tree as the real scripts.
set -euo pipefail
dataset="$1"; seed="$2"; cfg="$3"
common="$dataset/shots_$SHOTS/$TRAINER_DIR/$cfg/seed$seed"
dir="$OUTPUT/base2new/{phase}/$common"
if [ "{phase}" = test_new ] && [ ! -f "$OUTPUT/base2new/train_base/$common/done.json" ]; then
    echo "error: training run not finished" >&2; exit 2
fi
if [ "${{FAKE_FAIL:-}}" = "$dataset $seed {phase}" ]; then
    mkdir -p "$dir"; echo "Traceback: fake crash" > "$dir/log.txt"; echo "fake crash" >&2; exit 1
fi
bonus=0
case "$EXTRA_OPTS" in *TEXTREFINER*) bonus=5 ;; esac
exec {python} {fake_logs} "$dir" {phase} "$(({accuracy} + bonus))" "${{FAKE_STEPS:-3}}" "$FAKE_LEDGER" {trainer} "$seed"
"""

# Fake accuracies, so tests can work out the tables by hand:
# Base = 60 + seed + len(dataset name), New = 40 + 2 * seed, + 5 with TextRefiner opts.
FAKE_ACCURACY = {"train_base": "60 + seed + ${#dataset}", "test_new": "40 + 2 * seed"}


def trainer_of_scripts(method):
    """The trainer the sweep expects from the scripts folder `method` (e.g. "coop" -> "CoOp")."""
    sys.path.insert(0, REPO_ROOT)
    from tools.sweep import METHODS

    return next(row.trainer for row in METHODS.values() if row.scripts == method)


FAKE_PROTOCOL_SCRIPT = """#!/usr/bin/env bash
# Fake scripts/protocol.sh: same arguments, environment and output tree as the real one.
set -euo pipefail
step="$1"; trainer="$2"; cfg="$4"; dataset="$5"; seed="$6"; source="$7"
shift 7
echo "imports: $*" >&2
bonus=0
case "$EXTRA_OPTS" in *TEXTREFINER*) bonus=5 ;; esac
case "$step" in
    fewshot)
        dir="$OUTPUT/$dataset/$TRAINER_DIR/${{cfg}}_${{SHOTS}}shots/seed$seed"; kind=train_base
        accuracy=$((50 + SHOTS + seed + ${{#dataset}} + bonus)) ;;
    xd_test)
        dir="$OUTPUT/evaluation/$TRAINER_DIR/${{cfg}}_${{SHOTS}}shots/$dataset/seed$seed"; kind=test
        if [ "$trainer" != ZeroshotCLIP ] && [ ! -f "$OUTPUT/$source/$TRAINER_DIR/${{cfg}}_${{SHOTS}}shots/seed$seed/done.json" ]; then
            echo "error: source run not finished" >&2; exit 2
        fi
        accuracy=$((30 + 2 * seed + ${{#dataset}} + bonus)) ;;
    base2new_train) dir="$OUTPUT/base2new/train_base/$dataset/shots_$SHOTS/$TRAINER_DIR/$cfg/seed$seed"; kind=train_base
        accuracy=$((60 + seed + ${{#dataset}} + bonus)) ;;
    base2new_test) dir="$OUTPUT/base2new/test_new/$dataset/shots_$SHOTS/$TRAINER_DIR/$cfg/seed$seed"; kind=test_new
        accuracy=$((40 + 2 * seed + bonus)) ;;
esac
[ "$trainer" = ZeroshotCLIP ] && [ "$step" != base2new_test ] && kind=test && accuracy=$((40 + ${{#dataset}}))
[ -f "$dir/done.json" ] && exit 0
if [ "${{FAKE_FAIL:-}}" = "$dataset $seed $step" ]; then
    mkdir -p "$dir"; echo "Traceback: fake crash" > "$dir/log.txt"; echo "fake crash" >&2; exit 1
fi
exec {python} {fake_logs} "$dir" "$kind" "$accuracy" "${{FAKE_STEPS:-3}}" "$FAKE_LEDGER"
"""


def write_fake_scripts(root, methods, datasets):
    """ROOT/scripts/<method>/base2new_{train,test}.sh and ROOT/scripts/protocol.sh
    that run `fake_run`, ROOT/configs/datasets/<dataset>.yaml, and the real
    trainer configs; returns ROOT/scripts.

    Fake accuracies of protocol.sh: few-shot training 50 + shots + seed + len(dataset),
    an evaluation on a target 30 + 2 * seed + len(target) (+5 with TextRefiner
    opts); zero-shot 40 + len(dataset); base-to-new as above."""
    scripts = os.path.join(root, "scripts")
    os.makedirs(scripts, exist_ok=True)
    with open(os.path.join(scripts, "protocol.sh"), "w") as f:
        f.write(FAKE_PROTOCOL_SCRIPT.format(python="\"$PYTHON\"", fake_logs=os.path.abspath(__file__)))
    trainer_configs = os.path.join(root, "configs", "trainers")
    shutil.copytree(os.path.join(REPO_ROOT, "configs", "trainers"), trainer_configs, dirs_exist_ok=True)
    for dataset in datasets:  # TGP-T's per-dataset configs
        open(os.path.join(trainer_configs, "TGPT", f"vit_b16_{dataset}.yaml"), "a").close()
    for method in methods:
        os.makedirs(os.path.join(scripts, method), exist_ok=True)
        for phase, name in (("train_base", "base2new_train.sh"), ("test_new", "base2new_test.sh")):
            text = FAKE_SCRIPT.format(
                script=name, phase=phase, python='"$PYTHON"', fake_logs=os.path.abspath(__file__),
                accuracy=FAKE_ACCURACY[phase], trainer=trainer_of_scripts(method),
            )
            with open(os.path.join(scripts, method, name), "w") as f:
                f.write(text)
    configs = os.path.join(root, "configs", "datasets")
    os.makedirs(configs, exist_ok=True)
    for dataset in datasets:
        open(os.path.join(configs, f"{dataset}.yaml"), "w").close()
    return scripts


def read_ledger(path):
    """[(event, run_dir, gpu, time)] in the order they were written."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(e, d, g, float(t)) for e, d, g, t in (line.split() for line in f if line.strip())]


if __name__ == "__main__":
    if len(sys.argv) == 8:  # the base-to-new fake scripts: train.py's folder decision too
        run_dir, phase, accuracy, steps, ledger, trainer, seed = sys.argv[1:8]
        fake_train_py(run_dir, phase, float(accuracy), int(steps), ledger, trainer, seed)
    else:  # the fake protocol.sh, which skips finished folders itself
        run_dir, phase, accuracy, steps, ledger = sys.argv[1:6]
        fake_run(run_dir, phase, float(accuracy), int(steps), ledger)
