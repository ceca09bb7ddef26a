"""Train or evaluate one run: `python train.py --root DATA --trainer CoOp --config-file ... --output-dir ...`.

Flags follow the CoOp repositories' train.py; `--import MODULE` adds modules
(dotted names or .py paths) that register trainers/datasets. Every module in
the repository's `trainers/` and `datasets/` folders is imported at start, so
a new method or dataset file needs no edit here.
"""
import argparse
import contextlib
import os
import sys
import traceback

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
if REPO_DIR not in sys.path:
    sys.path.insert(0, REPO_DIR)

import torch  # noqa: E402

from dassl.config import (  # noqa: E402
    apply_cfg_extensions,
    get_cfg_default,
    merge_from_file,
    merge_from_list,
    set_value,
)
from dassl.config.validate import check_cfg_values, check_training_length  # noqa: E402
from dassl.data.datasets import DATASET_REGISTRY, build_dataset  # noqa: E402
from dassl.engine import TRAINER_REGISTRY, build_trainer  # noqa: E402
from dassl.engine import run_fingerprint as fingerprints  # noqa: E402
from dassl.engine.distributed import RankOutput, init_distributed_from_env, is_main_process, synchronize  # noqa: E402
from dassl.engine.preemption import Preempted  # noqa: E402
from dassl.engine.run_lock import RunFolderLock, RunLockedError  # noqa: E402
from dassl.engine.trainer_base import checkpoint_filename  # noqa: E402
from dassl.utils import collect_env_info, read_done_marker, set_random_seed, setup_logger, write_done_marker  # noqa: E402
from dassl.utils import exit_codes  # noqa: E402
from dassl.utils.atomic import remove_stale_temp_files  # noqa: E402
from dassl.utils.errors import InputError  # noqa: E402
from trainers.common.feature_cache import backbone_fingerprint  # noqa: E402
from dassl.utils.plugins import import_folder_modules, import_module_or_file  # noqa: E402

PLUGIN_FOLDERS = (os.path.join(REPO_DIR, "trainers"), os.path.join(REPO_DIR, "datasets"))


class UsageError(InputError, ValueError):
    """Bad command-line input, reported before any long work starts."""


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory (from which the training resumes)")
    parser.add_argument("--seed", type=int, default=None, help="random seed; any value >= 0 (0 included) seeds python, numpy and torch")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to config file for dataset setup")
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    parser.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument(
        "--restart", action="store_true",
        help="discard the output folder's checkpoints, done.json and run.json (log.txt is renamed) and run from scratch",
    )
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import a module (dotted name or .py path) that registers trainers/datasets; repeatable",
    )
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="modify config options using the command-line")
    return parser


def import_plugins(folders, imports):
    for folder in folders:
        if os.path.isdir(folder):
            import_folder_modules(folder)
    for target in imports:
        import_module_or_file(target)


def _flag_overrides(args):
    """(config key, value, flag) for every CLI flag that was given."""
    overrides = [
        ("DATASET.ROOT", args.root, "--root"),
        ("OUTPUT_DIR", args.output_dir, "--output-dir"),
        ("RESUME", args.resume, "--resume"),
        ("DATASET.SOURCE_DOMAINS", args.source_domains, "--source-domains"),
        ("DATASET.TARGET_DOMAINS", args.target_domains, "--target-domains"),
        ("INPUT.TRANSFORMS", args.transforms, "--transforms"),
        ("TRAINER.NAME", args.trainer, "--trainer"),
        ("MODEL.BACKBONE.NAME", args.backbone, "--backbone"),
        ("MODEL.HEAD.NAME", args.head, "--head"),
    ]
    given = [(key, value, flag) for key, value, flag in overrides if value]
    if args.seed is not None:
        given.append(("SEED", args.seed, "--seed"))
    return given


def setup_cfg(args):
    """defaults -> cfg extensions -> dataset yaml -> trainer yaml -> CLI flags -> opts -> freeze."""
    cfg = apply_cfg_extensions(get_cfg_default())
    if args.dataset_config_file:
        merge_from_file(cfg, args.dataset_config_file)
    if args.config_file:
        merge_from_file(cfg, args.config_file)
    for key, value, flag in _flag_overrides(args):
        set_value(cfg, key, value, source=f"the command line ({flag})")
    merge_from_list(cfg, args.opts, source="the command line (trailing KEY VALUE options)")
    cfg.freeze()
    return cfg


def check_trainer_cfg(trainer_class, cfg):
    """The trainer's own `check_cfg`, before the run folder is made or the dataset read. It is an
    instance method in Dassl's API, called here on a bare instance: it may read only `cfg`."""
    trainer_class.check_cfg(object.__new__(trainer_class), cfg)


def validate(cfg, args):
    """Fail fast, with the fix in the message, on input that would fail later."""
    if not cfg.DATASET.ROOT:
        raise UsageError("No dataset root: pass --root DIR (the folder that holds the datasets)")
    if not os.path.isdir(cfg.DATASET.ROOT):
        raise UsageError(f"Dataset root {cfg.DATASET.ROOT!r} (--root) does not exist or is not a folder")
    if not cfg.TRAINER.NAME:
        raise UsageError(f"No trainer: pass --trainer NAME (registered: {sorted(TRAINER_REGISTRY.registered_names())})")
    check_trainer_cfg(TRAINER_REGISTRY.get(cfg.TRAINER.NAME), cfg)
    if not cfg.DATASET.NAME:
        raise UsageError("No dataset: pass --dataset-config-file configs/datasets/<name>.yaml (or DATASET.NAME NAME)")
    DATASET_REGISTRY.get(cfg.DATASET.NAME)
    check_cfg_values(cfg)
    if not (args.eval_only or args.no_train):
        check_training_length(cfg)
    if args.model_dir and not os.path.isdir(args.model_dir):
        raise UsageError(f"--model-dir {args.model_dir!r} does not exist")
    if args.load_epoch is not None and not args.eval_only:
        print("Note: --load-epoch is used only with --eval-only")


def print_args(args, cfg):
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(vars(args)):
        print(f"{key}: {vars(args)[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


def run_eval_only(trainer, args):
    if not args.model_dir and trainer.get_model_names():
        raise UsageError(
            f"--eval-only needs --model-dir DIR (the output folder of the training run): trainer "
            f"{type(trainer).__name__} has learned weights ({trainer.get_model_names()}); add --load-epoch N too"
        )
    trainer.load_model(args.model_dir, epoch=args.load_epoch)
    trainer.test()
    return trainer.last_test_results


# ----------------------------------------------------------------------------- the run folder


def request_fingerprint(cfg, args):
    """What is known before anything is built: the config, the mode and, for --eval-only, the model folder."""
    request = {"config": fingerprints.flat_config(cfg), "mode": "eval-only" if args.eval_only else "train"}
    if args.eval_only and args.model_dir:
        request["eval"] = fingerprints.model_dir_section(
            args.model_dir, checkpoint_filename(args.load_epoch), args.load_epoch)
    return request


def backbone_section(cfg):
    """SHA-256 of the backbone checkpoint (hashed once per process); its name when it is not a CLIP file."""
    backbone = cfg.MODEL.BACKBONE
    if not (backbone.PATH or backbone.NAME):
        return None
    try:
        return backbone_fingerprint(cfg)
    except (OSError, ValueError, RuntimeError):
        return backbone.PATH or backbone.NAME


def full_fingerprint(request, cfg, dataset):
    return dict(request, data=fingerprints.data_section(dataset), backbone=backbone_section(cfg))


def claim_run_folder(cfg, args):
    """Rank 0 locks the folder (RunLockedError if it is busy) and clears it with --restart; returns the lock."""
    lock = RunFolderLock(cfg.OUTPUT_DIR).acquire() if is_main_process() else None
    try:
        if args.restart and is_main_process():
            fingerprints.clear_run_state(cfg.OUTPUT_DIR)
        synchronize()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


def check_same_run(output_dir, fingerprint):
    """The folder's state for `fingerprint`; a folder holding another run is refused."""
    state, found = fingerprints.run_folder_state(output_dir, fingerprint)
    if state == fingerprints.MISMATCH:
        raise fingerprints.mismatch_error(output_dir, found)
    return state


def check_resume_source(resume_dir, request):
    """--resume DIR from another folder: its run.json must describe the same run as this one."""
    stored = fingerprints.read_fingerprint(resume_dir)
    if stored is None:
        print(f"Note: --resume {resume_dir} has no {fingerprints.RUN_FILE} (a folder of another codebase?): "
              "its checkpoint is loaded without checking that it comes from the same run")
        return
    found = fingerprints.differences(stored, request)
    if found:
        raise fingerprints.RunFolderMismatchError(
            f"--resume {resume_dir} holds another run ({fingerprints.summary(found)}): resume from a folder of the "
            "same run, or drop --resume"
        )


def check_data_and_backbone(cfg, request):
    """A finished or resumable folder of the same config: refuse it if its data or backbone differ,
    before the log is touched. Seeded like the run, so a few-shot sample drawn here (its file
    deleted) is the run's own."""
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    check_same_run(cfg.OUTPUT_DIR, full_fingerprint(request, cfg, build_dataset(cfg)))


def stored_results(cfg):
    """A finished folder of the same run: print its results and return them."""
    results = read_done_marker(cfg.OUTPUT_DIR)["results"]
    shown = ", ".join(f"{key} {value:.2f}" for key, value in results.items())
    print(f"{cfg.OUTPUT_DIR} already holds this run, finished (done.json): {shown or 'no results'}. "
          "Nothing to do; --restart runs it again")
    return results


def main(argv=None, plugin_folders=PLUGIN_FOLDERS):
    """Run train.py with `argv`; returns the final results dict (None if nothing was tested)."""
    args = build_parser().parse_args(argv)
    import_plugins(plugin_folders, args.imports)
    cfg = setup_cfg(args)
    validate(cfg, args)
    init_distributed_from_env()
    lock = claim_run_folder(cfg, args)
    try:
        if is_main_process() and os.path.isdir(cfg.OUTPUT_DIR):
            remove_stale_temp_files(cfg.OUTPUT_DIR, recursive=True)  # left by a killed write
        request = request_fingerprint(cfg, args)
        state = check_same_run(cfg.OUTPUT_DIR, request)
        if cfg.RESUME and os.path.realpath(cfg.RESUME) != os.path.realpath(cfg.OUTPUT_DIR):
            check_resume_source(cfg.RESUME, request)
        if state != fingerprints.NEW:
            check_data_and_backbone(cfg, request)
        if state == fingerprints.FINISHED:
            return stored_results(cfg)
        return run(cfg, args, request, state)
    finally:
        if lock is not None:
            lock.release()


def run(cfg, args, request, state):
    """Build the trainer, record the run's full fingerprint in a new folder, then train and/or test."""
    run_logger = setup_logger(cfg.OUTPUT_DIR) if is_main_process() else RankOutput()
    try:
        if cfg.SEED >= 0:
            print(f"Setting fixed seed: {cfg.SEED}")
            set_random_seed(cfg.SEED)
        if torch.cuda.is_available() and cfg.USE_CUDA:
            torch.backends.cudnn.benchmark = True
        print_args(args, cfg)
        print("Collecting env info ...")
        print(f"** System info **\n{collect_env_info()}\n")
        trainer = build_trainer(cfg)
        if state == fingerprints.NEW and is_main_process():
            fingerprints.write_fingerprint(cfg.OUTPUT_DIR, full_fingerprint(request, cfg, trainer.dm.dataset))
        nothing_to_train = not trainer.get_model_names()
        if args.eval_only or nothing_to_train:
            if not args.eval_only:
                print(f"Note: {type(trainer).__name__} has nothing to train; evaluating it (as with --eval-only)")
            results = run_eval_only(trainer, args)
        elif args.no_train:
            return None
        else:
            results = trainer.train()
        if is_main_process():
            write_done_marker(cfg.OUTPUT_DIR, results)
        return results
    except Preempted as stop:
        run_logger.file.write(f"{stop}\n")
        raise
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk must not hide the error itself
            run_logger.file.write(traceback.format_exc())
        raise
    finally:
        run_logger.close()


def one_line_message(exc):
    """The message of an input error as one line.

    An error raised in a DataLoader worker is re-raised with the worker's
    traceback as its message; its last line holds the original message.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught ") and ": " in lines[-1]:
        return lines[-1].split(": ", 1)[1]
    return " ".join(lines)


def cli():
    """Entry point: input errors (bad paths, names, config, data, checkpoints) and a preemption
    (exit status exit_codes.PREEMPTED) print one line, not a traceback."""
    try:
        main()
    except RunLockedError as exc:
        print(f"train.py: {one_line_message(exc)}", file=sys.stderr)
        sys.exit(exit_codes.RUN_LOCKED)
    except InputError as exc:
        sys.exit(f"train.py: error: {one_line_message(exc)}")
    except Preempted as stop:
        print(f"train.py: {stop}", file=sys.stderr)
        sys.exit(exit_codes.PREEMPTED)


if __name__ == "__main__":
    cli()
