"""CI runs the README's two set-up commands exactly as written, so the README cannot drift from
what is checked: the first installs and runs the main job, the second installs what the tests need
and runs them."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_setup_commands():
    section = (REPO / "README.md").read_text().split("## Set-up (fresh machine)", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_setup_commands_verbatim_and_in_order():
    commands = readme_setup_commands()
    assert len(commands) == 2
    assert commands[0].startswith("pip install -e . ") and "scripts/mini_world.sh" in commands[0]
    assert commands[1].startswith('pip install -e ".[test]"') and "pytest" in commands[1]
    ci_lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    positions = [ci_lines.index(command) for command in commands]
    assert positions == sorted(positions)
