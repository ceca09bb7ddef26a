from .atomic import atomic_write, atomic_write_text
from .hints import closest_name_hint
from .logger import console_stream, setup_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry
from .rng import capture_rng_state, restore_rng_state
from .tools import (
    check_isfile,
    collect_env_info,
    file_sha256,
    is_run_done,
    listdir_nohidden,
    mkdir_if_missing,
    read_done_marker,
    read_image,
    read_json,
    set_random_seed,
    write_done_marker,
    write_json,
)
from .torchtools import (
    count_num_param,
    load_checkpoint,
    load_pretrained_weights,
    resume_from_checkpoint,
    save_checkpoint,
)
