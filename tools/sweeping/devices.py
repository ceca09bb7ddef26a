"""`--gpus` checked before any run starts: a machine without working CUDA, or an id it does not
have, is an error, not a sweep that silently trains on the CPU."""
import os
import subprocess
import sys

COUNT_GPUS = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"


class GpuError(Exception):
    """--gpus names GPUs this machine cannot give the runs."""


def usable_gpu_count(python=sys.executable):
    """CUDA devices the runs' interpreter sees, counted in a child process (CUDA initialised in the
    sweep would not survive the warm-start server's fork), with the ids --gpus uses: all of them."""
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    result = subprocess.run([python, "-c", COUNT_GPUS], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return 0
    return int(result.stdout.strip().splitlines()[-1])


def check_gpu_ids(ids):
    """Raise GpuError unless every id is a GPU of this machine."""
    bad = [gpu for gpu in ids if not gpu.isdigit()]
    if bad:
        raise GpuError(f"--gpus {' '.join(bad)}: GPU ids are integers such as 0 1 (as nvidia-smi numbers them)")
    count = usable_gpu_count()
    if count == 0:
        raise GpuError(
            f"--gpus {' '.join(ids)}: this machine has no usable CUDA GPU (torch.cuda.is_available() is False "
            f"in {sys.executable}); drop --gpus to run on the CPU (--jobs N runs N at a time)"
        )
    missing = [gpu for gpu in ids if int(gpu) >= count]
    if missing:
        raise GpuError(f"--gpus {' '.join(missing)}: no such GPU; this machine has {count} (ids 0 to {count - 1})")
