"""Iteration mode (OPTIM.MAX_ITER > 0): a fixed number of optimizer steps over a cycling loader.

Bookkeeping reuses the epoch machinery with "epoch" meaning "iteration":
checkpoints are `model.pth.tar-<iterations done>`, resume restores the
iteration counter and starts a new loader pass. The resumable state is saved
at the end of every TRAIN.SAVE_RESUMABLE_EVERY loader passes, and on a
preemption signal in the middle of a pass (see TrainerBase.train_batches);
from both a resumed run goes on exactly like an uninterrupted one. The scheduler is stepped
before every optimizer step (see IterationCosineScheduler).
"""
import datetime
import time

from ..utils import AverageMeter, MetricMeter


class IterationLoop:
    """Mixed into TrainerX; `train()` dispatches here when OPTIM.MAX_ITER > 0."""

    def train_by_iterations(self):
        with self.preemption:
            return self._iterate()

    def _iterate(self):
        self.max_epoch = self.max_iter = self.cfg.OPTIM.MAX_ITER
        self.num_batches = self.max_iter
        self.lr_stepped_per_iteration = True
        self.before_train()
        self.iteration = self.start_epoch
        losses, batch_time, data_time = MetricMeter(), AverageMeter(), AverageMeter()
        batches = self._cycle_train_loader()
        self.set_model_mode("train")
        end = time.time()
        while self.iteration < self.max_iter:
            batch = next(batches)
            data_time.update(time.time() - end)
            self.epoch = self.batch_idx = self.iteration
            self.step_schedulers()
            losses.update(self.forward_backward(batch))
            batch_time.update(time.time() - end)
            self.iteration += 1
            if self.iteration % self.cfg.TRAIN.PRINT_FREQ == 0 or self.iteration == self.max_iter:
                self._print_iteration(losses, batch_time, data_time)
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, self.iteration)
            self.write_scalar("train/lr", self.get_current_lr(), self.iteration)
            self.after_iteration()
            self.stop_if_preempted(f"iteration {self.iteration}", self.iteration, f"iteration {self.iteration + 1}")
            end = time.time()
        return self.after_train()

    def _cycle_train_loader(self):
        """Endless batches; every pass is a new (reshuffled) loader iterator, last partial batch kept
        (the first pass resumes a mid-pass state, see train_batches)."""
        while True:
            for _, batch in self.train_batches():
                yield batch

    def _print_iteration(self, losses, batch_time, data_time):
        eta = datetime.timedelta(seconds=int(batch_time.avg * (self.max_iter - self.iteration)))
        print(
            f"iter [{self.iteration}/{self.max_iter}] "
            f"time {batch_time.val:.3f} ({batch_time.avg:.3f}) "
            f"data {data_time.val:.3f} ({data_time.avg:.3f}) "
            f"{losses} "
            f"lr {self.get_current_lr():.4e} "
            f"eta {eta}"
        )

    def after_iteration(self):
        """Validate every TRAIN.VAL_FREQ iterations (best_val keeps the strictly best), checkpoint."""
        k, cfg = self.iteration, self.cfg
        last = k == self.max_iter
        val_due = cfg.TRAIN.VAL_FREQ > 0 and k % cfg.TRAIN.VAL_FREQ == 0
        best_val = not cfg.TEST.NO_TEST and cfg.TEST.FINAL_MODEL == "best_val"
        if val_due or (best_val and last):
            result = self.test(split="val")
            self.set_model_mode("train")
            if best_val and result > self.best_result:
                self.best_result = result
                self.save_model(k - 1, self.output_dir, val_result=result, model_name="model-best.pth.tar")
        freq, every = cfg.TRAIN.CHECKPOINT_FREQ, cfg.TRAIN.SAVE_RESUMABLE_EVERY
        pass_end = every > 0 and k % (every * len(self.train_loader_x)) == 0
        if (freq > 0 and k % freq == 0) or last or pass_end:
            self.save_resumable_state(k - 1, self.output_dir, self.checkpoint_requested)
        self.epoch_bar.update(1)
