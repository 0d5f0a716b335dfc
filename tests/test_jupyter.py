"""`kedro jupyter notebook` and `kedro jupyter lab` work right after the project's install.

Each test starts the real command in a copy of the project, on loopback only (127.0.0.1, a
free port, no browser, a random token), asks the running server over HTTP for
``notebooks/exploration.ipynb`` (Jupyter's contents API) and for the kernel Kedro registers
(``kedro_atft_kedro``), then stops the whole process group. Jupyter's data, config and
runtime folders point into ``tmp_path`` so the kernel spec Kedro writes does not touch the
user's home.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kedro_project import copy_project

#: Longest the server may take to answer (a cold start on a busy 2-core machine takes 5-20 s).
START_TIMEOUT_S = 120
KERNEL_NAME = "kedro_atft_kedro"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        return json.loads(response.read().decode())


def _wait_ready(process: subprocess.Popen, base_url: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before answering:\n"
                                 f"{log.read_text()[-4000:]}")
        try:
            _get_json(f"{base_url}/api/status", token)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"the server did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not gone after 15 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.mark.parametrize("app", ["notebook", "lab"])
def test_kedro_jupyter_serves_the_exploration_notebook(app: str, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    jupyter_home = tmp_path / "jupyter"
    jupyter_home.mkdir()
    token = secrets.token_hex(16)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    kedro = str(Path(sys.executable).with_name("kedro"))
    env = {**os.environ, "PYTHONPATH": str(project / "src"),
           "JUPYTER_DATA_DIR": str(jupyter_home / "data"), "JUPYTER_CONFIG_DIR": str(jupyter_home / "config"),
           "JUPYTER_RUNTIME_DIR": str(jupyter_home / "runtime"), "IPYTHONDIR": str(jupyter_home / "ipython")}
    command = [kedro, "jupyter", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--port-retries=0", f"--IdentityProvider.token={token}"]
    if os.geteuid() == 0:  # CI runs as root, where Jupyter refuses to start without it
        command.append("--allow-root")
    log = tmp_path / "server.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=project, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_ready(process, base_url, token, log)
            notebook = _get_json(f"{base_url}/api/contents/notebooks/exploration.ipynb", token)
            kernelspecs = _get_json(f"{base_url}/api/kernelspecs", token)
            page = urllib.request.urlopen(  # noqa: S310 - loopback only
                urllib.request.Request(f"{base_url}/{'lab' if app == 'lab' else 'tree'}",
                                       headers={"Authorization": f"token {token}"}), timeout=10)
            page_status = page.status
        finally:
            _stop(process)

    assert notebook["type"] == "notebook", notebook
    assert notebook["path"] == "notebooks/exploration.ipynb"
    expected_cells = json.loads((project / "notebooks" / "exploration.ipynb").read_text())["cells"]
    assert len(notebook["content"]["cells"]) == len(expected_cells) > 0
    # The kernel `kedro jupyter` registers (Kedro's IPython extension loaded) is the server's default.
    assert kernelspecs["default"] == KERNEL_NAME, kernelspecs["default"]
    assert "kedro.ipython" in kernelspecs["kernelspecs"][KERNEL_NAME]["spec"]["argv"]
    assert page_status == 200

