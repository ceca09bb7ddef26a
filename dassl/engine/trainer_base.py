"""TrainerBase: model/optimizer/scheduler bookkeeping, checkpoints, the epoch loop skeleton."""
import os
from collections import OrderedDict

import torch

from ..utils import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from ..utils.errors import CheckpointMismatchError, MissingCheckpointError, TrainingDivergedError
from ..utils.torchtools import (
    BEST_FILE,
    MID_PASS_FILE,
    POINTER_FILE,
    apply_checkpoint,
    load_first_readable,
    resume_candidates,
)
from .distributed import is_main_process, synchronize
from .preemption import PreemptionWatch

CHECKPOINT_PREFIX = "model.pth.tar-"


def checkpoint_filename(epoch=None):
    """`model.pth.tar-<epoch>`, or `model-best.pth.tar` without an epoch."""
    return BEST_FILE if epoch is None else f"{CHECKPOINT_PREFIX}{epoch}"


def superseded_checkpoints(folder, requested):
    """Files `model.pth.tar-N` of `folder` older than its newest two (the resume point and its
    fallback) whose N was not `requested` (by TRAIN.CHECKPOINT_FREQ or as the final one)."""
    numbered = sorted(
        (int(name[len(CHECKPOINT_PREFIX):]), name)
        for name in os.listdir(folder)
        if name.startswith(CHECKPOINT_PREFIX) and name[len(CHECKPOINT_PREFIX):].isdigit()
    )
    return [os.path.join(folder, name) for number, name in numbered[:-2] if not requested(number)]


class TrainerBase:
    """Registered models (with their optimizer and scheduler) and the generic train loop."""

    def __init__(self):
        self._models = OrderedDict()
        self._optims = OrderedDict()
        self._scheds = OrderedDict()
        self._writer = None
        self.preemption = PreemptionWatch()
        self.resume_point = None

    def register_model(self, name="model", model=None, optim=None, sched=None):
        """Make `model` part of the trainer: mode switches, LR steps, checkpoints."""
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot register a model before TrainerBase.__init__() ran (call super().__init__())")
        if name in self._models:
            raise KeyError(f'A model named "{name}" is already registered; pick another name')
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names=None):
        names_real = list(self._models)
        if names is None:
            return names_real
        names = [names] if isinstance(names, str) else list(names)
        unknown = [name for name in names if name not in names_real]
        if unknown:
            raise KeyError(f"No registered model named {unknown}; registered: {names_real}")
        return names

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name="", extra=None):
        """One checkpoint per registered model under `directory/<name>/` (epoch stored as epoch + 1),
        with the entries of `extra` added.

        Under torchrun only rank 0 writes; the others wait until the files exist.
        """
        if is_main_process():
            self._write_checkpoints(epoch, directory, is_best, val_result, model_name, extra or {})
        synchronize()

    def _write_checkpoints(self, epoch, directory, is_best, val_result, model_name, extra):
        rng_state = capture_rng_state()
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": self._models[name].state_dict(),
                "epoch": epoch + 1,
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "val_result": None if val_result is None else float(val_result),
                "rng_state": rng_state,
                **extra,
            }
            save_checkpoint(state, os.path.join(directory, name), is_best=is_best, model_name=model_name)

    def save_resumable_state(self, epoch, directory, requested):
        """save_model, then drop the resume-only checkpoints it supersedes (see superseded_checkpoints)
        and any mid-pass state (MID_PASS_FILE)."""
        self.save_model(epoch, directory)
        if not is_main_process():
            return
        for name in self.get_model_names():
            folder = os.path.join(directory, name)
            for path in superseded_checkpoints(folder, requested):
                os.remove(path)
            if os.path.isfile(os.path.join(folder, MID_PASS_FILE)):
                os.remove(os.path.join(folder, MID_PASS_FILE))

    def save_mid_pass_state(self, done, batches_done, resume_at):
        """MID_PASS_FILE for every model: the state after `batches_done` batches of the current loader pass
        (`done` epochs or iterations counted as finished), with the RNG state at the start of that pass."""
        extra = {"batches_done": batches_done, "pass_start_rng": self.pass_start_rng, "resume_at": resume_at}
        self.save_model(done - 1, self.output_dir, model_name=MID_PASS_FILE, extra=extra)

    def train_batches(self):
        """(index, batch) of one pass over the train loader; right after a resume from a mid-pass state,
        the pass of the saved run from its next batch.

        The RNG state at the start of a pass (which draws the loader's shuffle and workers' seeds) is
        kept in `pass_start_rng`; a resumed pass restores it, draws and discards the batches the saved
        run had trained on, then restores the RNG state the saved run had after them.
        """
        resume, self.resume_point = self.resume_point, None
        if resume:
            restore_rng_state(resume["pass_start_rng"])
        self.pass_start_rng = capture_rng_state()
        batches = iter(self.train_loader_x)
        start = resume["batches_done"] if resume else 0
        for _ in range(start):
            next(batches)
        if resume:
            restore_rng_state(resume["rng_state"])
            print(f"Resume at {resume['resume_at']}")
        for index, batch in enumerate(batches, start=start):
            self.pass_batches_done = index + 1
            yield index, batch

    def resume_model_if_exist(self, directory):
        """Resume every registered model from `directory/<name>/`; returns the start epoch (0 if none).

        A mid-pass state (MID_PASS_FILE, saved on a preemption signal) comes first; else all models
        resume from the same epoch: the newest one whose files all load, falling back (with a warning
        line) to the previous checkpoint.
        """
        names = self.get_model_names()
        folders = {name: os.path.join(directory, name) for name in names}

        def load_all(path):
            filename = os.path.basename(path)
            return {name: load_checkpoint(os.path.join(folder, filename)) for name, folder in folders.items()}

        candidates = []
        if names and all(os.path.isfile(os.path.join(folder, MID_PASS_FILE)) for folder in folders.values()):
            candidates.append(os.path.join(folders[names[0]], MID_PASS_FILE))
        if names and all(os.path.isfile(os.path.join(folder, POINTER_FILE)) for folder in folders.values()):
            candidates += resume_candidates(folders[names[0]])
        if not candidates:
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Resume the checkpoint from {directory}")
        path, checkpoints = load_first_readable(candidates, load_all)
        for name, checkpoint in checkpoints.items():
            print(f"Loading checkpoint from {os.path.join(folders[name], os.path.basename(path))}")
            apply_checkpoint(checkpoint, self._models[name], self._optims[name], self._scheds[name])
        first = checkpoints[names[0]]
        if "batches_done" in first:
            self.resume_point = first
        elif first.get("rng_state") is not None:
            restore_rng_state(first["rng_state"])
        best_path = os.path.join(folders[names[0]], BEST_FILE)
        if os.path.isfile(best_path):
            best = load_checkpoint(best_path).get("val_result")
            if best is not None:
                self.best_result = best
        print(f"Previous epoch: {first['epoch']}")
        return first["epoch"]

    def load_model(self, directory, epoch=None):
        """Load `model-best.pth.tar` (or `model.pth.tar-<epoch>`) of every registered model from `directory`."""
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        filename = checkpoint_filename(epoch)
        for name in self.get_model_names():
            model_path = os.path.join(directory, name, filename)
            if not os.path.isfile(model_path):
                folder = os.path.dirname(model_path)
                found = sorted(f for f in os.listdir(folder) if f.startswith("model")) if os.path.isdir(folder) else []
                raise MissingCheckpointError(
                    f"No model at {model_path} (expected {filename} for model '{name}'). "
                    + (f"That folder holds {found}: pick one with --load-epoch N." if found else "Check --model-dir.")
                    + (" Without --load-epoch the best-val model is loaded, which last_step runs never write." if epoch is None else "")
                )
            checkpoint = load_checkpoint(model_path)
            val_result = checkpoint.get("val_result")
            val_text = "" if val_result is None else f", val_result={val_result:.1f}"
            print(f"Load {model_path} to {name} (epoch={checkpoint['epoch']}{val_text})")
            try:
                self._models[name].load_state_dict(checkpoint["state_dict"])
            except RuntimeError as exc:
                raise CheckpointMismatchError(
                    f"{model_path} does not fit model '{name}' ({' '.join(str(exc).split())}); it was saved by another "
                    "trainer, class count or config: load it with the trainer and config that wrote it"
                ) from exc

    def set_model_mode(self, mode="train", names=None):
        if mode not in ("train", "eval", "test"):
            raise KeyError(f"Unknown model mode {mode!r}; use 'train', 'eval' or 'test'")
        for name in self.get_model_names(names):
            self._models[name].train(mode == "train")

    def update_lr(self, names=None):
        """Step every registered scheduler (once per epoch).

        In iteration mode the loop itself steps the schedulers before every
        optimizer step, so the per-epoch call trainers make at their last
        batch is a no-op there.
        """
        if getattr(self, "lr_stepped_per_iteration", False):
            return
        self.step_schedulers(names)

    def step_schedulers(self, names=None):
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def get_current_lr(self, names=None):
        name = self.get_model_names(names)[0]
        return self._optims[name].param_groups[0]["lr"]

    def detect_anomaly(self, loss):
        if torch.isfinite(loss).all():
            return
        epoch, batch = getattr(self, "epoch", 0), getattr(self, "batch_idx", 0)
        raise TrainingDivergedError(
            f"Loss is infinite or NaN at epoch {epoch + 1}, batch {batch + 1}. "
            f"{self._precision_hint()}Lowering OPTIM.LR can also help."
        )

    def _precision_hint(self):
        cfg = getattr(self, "cfg", None)
        nodes = [name for name, node in cfg.TRAINER.items() if hasattr(node, "get") and "PREC" in node] if cfg else []
        keys = ", ".join(f"TRAINER.{name}.PREC" for name in nodes) or "TRAINER.*.PREC"
        return f"fp16 training has no loss scaling and can overflow: try {keys} amp or fp32. "

    def model_zero_grad(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss):
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(self, loss, names=None):
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)

    def init_writer(self, log_dir):
        """Start a tensorboard writer if tensorboard is installed (it is optional); rank 0 only under torchrun."""
        if self._writer is not None or not is_main_process():
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        print(f"Initialize tensorboard (log_dir={log_dir})")
        self._writer = SummaryWriter(log_dir=log_dir)

    def close_writer(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write_scalar(self, tag, scalar_value, global_step=None):
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    def train(self, start_epoch, max_epoch):
        """before_train, then before/run/after_epoch for each epoch, then after_train."""
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        with self.preemption:
            self.before_train()
            for self.epoch in range(self.start_epoch, self.max_epoch):
                self.before_epoch()
                self.run_epoch()
                self.after_epoch()
                self.preemption.check(f"the end of epoch {self.epoch + 1}", f"its state is saved in {self.output_dir}")
        return self.after_train()

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_epoch(self):
        pass

    def after_epoch(self):
        pass

    def run_epoch(self):
        raise NotImplementedError

    def test(self):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError

