"""SlowToyTrainer: ToyTrainer with a pause after every step, so that a test can signal or kill
a run in the middle of its training (the pause changes no number). With SLOW_TOY_SIGTERM_AT_STEP=N
in the environment the run sends itself SIGTERM during its N-th step (counted in this process)."""
import os
import signal
import time

from dassl.engine import TRAINER_REGISTRY
from tests.helpers.toy_dataset import ToyTrainer

STEP_SECONDS = 0.05


@TRAINER_REGISTRY.register()
class SlowToyTrainer(ToyTrainer):
    steps = 0

    def forward_backward(self, batch):
        summary = super().forward_backward(batch)
        self.steps += 1
        if self.steps == int(os.environ.get("SLOW_TOY_SIGTERM_AT_STEP", 0)):
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STEP_SECONDS)
        return summary
