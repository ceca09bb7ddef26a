"""Issue #18, items 12 and 13: EXTRA_OPTS is split, never evaluated; DATASET.FOLDER stays under --root."""
import os
import subprocess

import pytest

from dassl.config import ConfigError
from tests.helpers.fake_benchmarks import dataset_cfg, make_image_folder
from tests.helpers.trainer_runs import REPO


def extra_words(tmp_path, extra_opts):
    """(exit status, the EXTRA array scripts/common.sh builds from EXTRA_OPTS, stderr)."""
    (tmp_path / "data").mkdir(exist_ok=True)
    env = {**os.environ, "DATA": str(tmp_path / "data"), "EXTRA_OPTS": extra_opts}
    result = subprocess.run(
        ["bash", "-c", 'source scripts/common.sh; for word in "${EXTRA[@]}"; do echo "${word}"; done'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    return result.returncode, result.stdout.splitlines(), result.stderr


def test_extra_opts_never_run_commands(tmp_path):
    marker = tmp_path / "ran"
    code, words, _ = extra_words(tmp_path, f"OPTIM.MAX_EPOCH $(touch {marker}) `touch {marker}` $HOME")
    assert code == 0 and not marker.exists()
    assert words == ["OPTIM.MAX_EPOCH", "$(touch", f"{marker})", "`touch", f"{marker}`", "$HOME"]


def test_extra_opts_keep_shell_quoting(tmp_path):
    code, words, _ = extra_words(tmp_path, """OPTIM.MAX_EPOCH 2 TRAINER.COOP.CTX_INIT "a photo of a" X 'b c' Y d\\ e""")
    assert code == 0
    assert words == ["OPTIM.MAX_EPOCH", "2", "TRAINER.COOP.CTX_INIT", "a photo of a", "X", "b c", "Y", "d e"]
    assert extra_words(tmp_path, "")[:2] == (0, [])


def test_extra_opts_with_unbalanced_quotes_are_refused(tmp_path):
    code, words, err = extra_words(tmp_path, 'TRAINER.COOP.CTX_INIT "a photo')
    assert code == 2 and words == []
    assert err.strip() == 'error: EXTRA_OPTS has unbalanced quotes: TRAINER.COOP.CTX_INIT "a photo'


@pytest.mark.parametrize("folder", ["../elsewhere", "my_set/../../elsewhere", "/tmp/elsewhere"])
def test_a_dataset_folder_leaving_the_root_is_refused(tmp_path, folder):
    from datasets.image_folder import ImageFolderDataset

    make_image_folder(tmp_path / "root", count=5)
    with pytest.raises(ConfigError) as error:
        ImageFolderDataset(dataset_cfg(tmp_path / "root", "ImageFolderDataset", folder=folder))
    assert str(error.value) == (
        f"DATASET.FOLDER must be a folder under --root (not an absolute path, no '..' leaving it), as the split and "
        f"few-shot files are written there; got {folder!r}. Set DATASET.FOLDER in the config file or on the command line."
    )
    assert not (tmp_path / "elsewhere").exists()
