"""Utilities: registry, logger tee, seeding, meters, done marker, plugin imports, device choice."""
import random
import sys

import numpy as np
import pytest
import torch

from dassl.config import get_cfg_default, merge_from_list
from dassl.engine.device import resolve_device
from dassl.utils import (
    AverageMeter,
    MetricMeter,
    Registry,
    capture_rng_state,
    is_run_done,
    listdir_nohidden,
    read_done_marker,
    restore_rng_state,
    set_random_seed,
    setup_logger,
    write_done_marker,
)
from dassl.utils.plugins import import_module_or_file


def test_registry_registers_by_name_and_rejects_duplicates():
    registry = Registry("THING")

    @registry.register()
    class Alpha:
        pass

    assert registry.get("Alpha") is Alpha and registry.registered_names() == ["Alpha"]
    registry.register(Alpha)
    with pytest.raises(KeyError, match="already registered"):
        registry.register(type("Alpha", (), {}))
    with pytest.raises(KeyError, match='Did you mean "Alpha"'):
        registry.get("Alpah")


def test_logger_tees_both_streams_and_appends_on_resume(tmp_path):
    handle = setup_logger(str(tmp_path))
    try:
        print("first run")
        print("a warning", file=sys.stderr)
    finally:
        handle.close()
    handle = setup_logger(str(tmp_path))
    try:
        print("second run")
    finally:
        handle.close()
    text = (tmp_path / "log.txt").read_text()
    assert text.index("first run") < text.index("a warning") < text.index("=== resumed ") < text.index("second run")
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]
    assert sys.stdout is handle.stdout and sys.stderr is handle.stderr


def test_same_seed_gives_same_numbers_and_rng_state_round_trips():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(1).item()

    set_random_seed(0)
    first = draw()
    set_random_seed(0)
    assert draw() == first
    state = capture_rng_state()
    expected = draw()
    set_random_seed(123)
    restore_rng_state(state)
    assert draw() == expected
    with pytest.raises(ValueError, match="seed"):
        set_random_seed(-1)


def test_meters_format_value_and_average():
    meter = MetricMeter()
    meter.update({"loss": torch.tensor(2.0), "acc": 50.0})
    meter.update({"loss": 1.0, "acc": 100.0})
    assert str(meter) == "loss 1.0000 (1.5000) acc 100.0000 (75.0000)"
    ema = AverageMeter(ema=True)
    ema.update(10.0)
    assert ema.avg == pytest.approx(1.0)


def test_done_marker_round_trip(tmp_path):
    assert not is_run_done(str(tmp_path))
    write_done_marker(str(tmp_path), {"accuracy": np.float64(91.5)})
    assert is_run_done(str(tmp_path))
    assert read_done_marker(str(tmp_path))["results"] == {"accuracy": 91.5}
    (tmp_path / ".hidden").write_text("")
    assert listdir_nohidden(str(tmp_path)) == ["done.json"]


def test_import_by_file_path_outside_the_repo_runs_once(tmp_path):
    plugin = tmp_path / "my-plugins" / "extra_trainer.py"
    plugin.parent.mkdir()
    plugin.write_text("import builtins\nbuiltins.extra_trainer_loads = getattr(builtins, 'extra_trainer_loads', 0) + 1\n")
    first = import_module_or_file(str(plugin))
    second = import_module_or_file(str(plugin))
    import builtins

    assert first is second and builtins.extra_trainer_loads == 1
    with pytest.raises(ImportError, match="no such file"):
        import_module_or_file(str(tmp_path / "missing.py"))


def test_device_falls_back_to_cpu_unless_cuda_was_asked_for(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = get_cfg_default()
    assert resolve_device(cfg).type == "cpu"
    merge_from_list(cfg, ["USE_CUDA", "True"])
    with pytest.raises(RuntimeError, match="USE_CUDA True was set explicitly.*USE_CUDA False"):
        resolve_device(cfg)
