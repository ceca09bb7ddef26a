"""Start `python train.py ...` runs from an already-warm process.

Importing torch, torchvision and the toolkit costs several CPU-seconds per
process; a sweep of many short runs (the mini world) would spend most of its
time there. `WarmServer` imports everything once and, for each request, forks
a fresh child that runs the script exactly as `python SCRIPT ARGS...` would, with the
caller's working directory, environment, stdout and stderr. Each run is still
its own process (nothing leaks between runs; a crash or kill ends only that
run), and the per-method scripts stay the one place that builds the command
lines: the sweep only sets `PYTHON` to this file's client.

    server:  WarmServer(socket_path).start()   (in the sweep)
    client:  write_client_launcher(folder)     (an executable the sweep passes as PYTHON;
                                                it finds the server through $WARM_START_SOCKET)
"""
import json
import os
import runpy
import select
import signal
import socket
import sys

SOCKET_ENV = "WARM_START_SOCKET"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _send_message(sock, payload, fds=()):
    data = json.dumps(payload).encode()
    header = len(data).to_bytes(8, "big")
    if fds:
        socket.send_fds(sock, [header + data], list(fds))
    else:
        sock.sendall(header + data)


def _recv_exact(sock, size, fds_wanted=0):
    chunks, fds, received = [], [], 0
    while received < size:
        if fds_wanted and not fds:
            data, fds, _, _ = socket.recv_fds(sock, size - received, fds_wanted)
        else:
            data = sock.recv(size - received)
        if not data:
            raise ConnectionError("warm-start peer closed the connection")
        chunks.append(data)
        received += len(data)
    return b"".join(chunks), fds


def _recv_message(sock, fds_wanted=0):
    header, fds = _recv_exact(sock, 8, fds_wanted)
    body, more = _recv_exact(sock, int.from_bytes(header, "big"))
    return json.loads(body), list(fds) + list(more)


def _preload():
    """Import what every run needs; the forked children then start at once."""
    sys.path.insert(0, REPO_ROOT)
    import train  # noqa: F401  (torch, dassl, clip)

    for folder in ("trainers", "datasets"):
        train.import_plugins([os.path.join(REPO_ROOT, folder)], [])


def _run_child(request, stdout_fd, stderr_fd):
    """In the forked child: become `python SCRIPT ARGS...` and exit with its status."""
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    code = 0
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exit_request:
        code = exit_request.code if isinstance(exit_request.code, int) else (0 if exit_request.code is None else 1)
        if not isinstance(exit_request.code, (int, type(None))):
            print(exit_request.code, file=sys.stderr)
    except BaseException:  # the run's own traceback, as `python script.py` would print it
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait_unless_client_gone(child, connection):
    """The run's exit status; if the client goes away first (its script was stopped), the run gets
    SIGTERM, as it would have in the client's place, and its status is still waited for."""
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status)
        readable, _, _ = select.select([connection], [], [], 0.1)
        if readable and not connection.recv(1, socket.MSG_PEEK):
            os.kill(child, signal.SIGTERM)
            return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])


class WarmServer:
    """Listens on a Unix socket; one forked child per request."""

    def __init__(self, socket_path):
        self.socket_path = str(socket_path)
        self.pid = None

    def start(self):
        """Fork the server process (it preloads, then serves until stop())."""
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        listener.listen(64)
        pid = os.fork()
        if pid:
            listener.close()
            self.pid = pid
            return self
        try:
            os.setsid()  # its own process group: stop() and the sweep's guardian end it with every run it forked
            _preload()
            self._serve(listener)
        finally:
            os._exit(0)

    def _serve(self, listener):
        """Single-threaded (fork-safe): one forked session per connection, reaped by the kernel."""
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        while True:
            connection, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                self._handle(connection)
                os._exit(0)
            connection.close()

    def _handle(self, connection):
        """In a session process: fork the run, wait for it, send back its exit status."""
        with connection:
            request, fds = _recv_message(connection, fds_wanted=2)
            child = os.fork()
            if child == 0:
                _run_child(request, *fds)
            for fd in fds:
                os.close(fd)
            code = _wait_unless_client_gone(child, connection)
            _send_message(connection, {"exit_code": code if code >= 0 else 128 - code})

    def stop(self):
        if self.pid:
            os.killpg(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
            self.pid = None
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)


def write_client_launcher(folder):
    """An executable that behaves like `python` for the scripts' `"$PYTHON" train.py ...`."""
    path = os.path.join(folder, "warm_python")
    with open(path, "w") as launcher:
        launcher.write(f'#!/bin/sh\nexec "{sys.executable}" "{os.path.abspath(__file__)}" "$@"\n')
    os.chmod(path, 0o755)
    return path


def client(argv):
    """Stand-in for `python ARGS...`: hand the run to the warm server, exit with its status."""
    path = os.environ.get(SOCKET_ENV)
    if not path:
        print(f"error: {SOCKET_ENV} is not set; this client only runs under tools/sweep.py --warm", file=sys.stderr)
        return 2
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        _send_message(sock, request, fds=[1, 2])
        reply, _ = _recv_message(sock)
    return reply["exit_code"]


if __name__ == "__main__":
    sys.exit(client(sys.argv[1:]))
