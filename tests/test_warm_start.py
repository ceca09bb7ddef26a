"""tools/warm_start.py: a forked warm process runs a script exactly like `python SCRIPT ARGS`."""
import os
import subprocess
import sys

from tools.warm_start import SOCKET_ENV, WarmServer, write_client_launcher

SCRIPT = """
import os, sys
print("args", sys.argv[1:], "cwd", os.getcwd(), "marker", os.environ.get("RUN_MARKER"))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""

CRASHING_SCRIPT = "raise RuntimeError('boom in the run')\n"


def run_through(launcher, server, script, *args, cwd, marker):
    env = dict(os.environ, RUN_MARKER=marker)
    env[SOCKET_ENV] = server.socket_path
    return subprocess.run([launcher, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_runs_get_their_own_args_cwd_env_streams_and_exit_status(tmp_path):
    script = tmp_path / "show.py"
    script.write_text(SCRIPT)
    crash = tmp_path / "crash.py"
    crash.write_text(CRASHING_SCRIPT)
    workdir = tmp_path / "work"
    workdir.mkdir()
    server = WarmServer(tmp_path / "socket").start()
    try:
        launcher = write_client_launcher(str(tmp_path))
        first = run_through(launcher, server, script, "3", "x y", cwd=workdir, marker="one")
        second = run_through(launcher, server, script, "0", cwd=tmp_path, marker="two")
        crashed = run_through(launcher, server, crash, cwd=tmp_path, marker="three")
    finally:
        server.stop()
    assert first.returncode == 3
    assert first.stdout.strip() == f"args ['3', 'x y'] cwd {workdir} marker one"
    assert first.stderr.strip() == "to stderr"
    assert second.returncode == 0 and f"cwd {tmp_path} marker two" in second.stdout
    assert crashed.returncode == 1 and "RuntimeError: boom in the run" in crashed.stderr
    assert not os.path.exists(server.socket_path or str(tmp_path / "socket"))


def test_client_without_a_server_explains_itself(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != SOCKET_ENV}
    result = subprocess.run([sys.executable, "tools/warm_start.py", "train.py"], env=env, capture_output=True,
                            text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 2 and "only runs under tools/sweep.py --warm" in result.stderr
