"""The MLflow run of a ``kedro run`` ends FAILED when a node raises and KILLED on SIGTERM or SIGINT.

A module fixture copies the project (as the end-to-end tests do) and adds a two-node pipeline,
``status_probe``, to the copy only: ``status_probe_fail`` raises, ``status_probe_wait`` writes a
marker file and then waits (at most ``WAIT_S``). Each test runs ``kedro run --env test
--pipelines status_probe --nodes <node>`` in a subprocess with the copy's ``src`` first on the
path, sends the signal once the marker exists, and reads the status of the new run from the
copy's ``mlruns/mlflow.db``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kedro_project import copy_project
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

EXPERIMENT = "atft-kedro"
MARKER = "status_probe_started"
#: Longest the waiting node waits, the test waits for it to start, and for the process to end.
WAIT_S = 240
START_TIMEOUT_S = 240
END_TIMEOUT_S = 120

PROBE_PIPELINE = f'''"""Test-only pipeline: one node that fails, one that waits to be stopped."""

import time
from pathlib import Path

from kedro.pipeline import Pipeline, node, pipeline


def fail() -> int:
    raise RuntimeError("planted failure of the status probe")


def wait() -> int:
    Path("{MARKER}").write_text("started")
    deadline = time.monotonic() + {WAIT_S}
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([node(fail, None, "status_probe_failed", name="status_probe_fail"),
                     node(wait, None, "status_probe_waited", name="status_probe_wait")])
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("status_project"))
    probe = root / "src" / "atft_kedro" / "pipelines" / "status_probe"
    probe.mkdir()
    (probe / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa: F401\n")
    (probe / "pipeline.py").write_text(PROBE_PIPELINE)
    return root


def _start(project: Path, node_name: str) -> subprocess.Popen:
    kedro = str(Path(sys.executable).with_name("kedro"))
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "OMP_NUM_THREADS": "1"}
    (project / MARKER).unlink(missing_ok=True)
    return subprocess.Popen(
        [kedro, "run", "--env", "test", "--pipelines", "status_probe", "--nodes", node_name],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
        # a shell may start background jobs with SIGINT ignored; the test needs Python's default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _run_ids(project: Path) -> set[str]:
    client = MlflowClient(f"sqlite:///{project}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return set()
    return {run.info.run_id for run in client.search_runs([experiment.experiment_id])}


def _new_run_status(project: Path, before: set[str]) -> str:
    new = _run_ids(project) - before
    assert len(new) == 1, f"expected one new MLflow run, got {len(new)}"
    client = MlflowClient(f"sqlite:///{project}/mlruns/mlflow.db")
    run = client.get_run(new.pop())
    assert run.info.run_name == "status_probe"
    return run.info.status


def _stop_when_started(process: subprocess.Popen, project: Path, signum: int) -> tuple[int, str]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (project / MARKER).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the waiting node never started:\n{process.communicate()[0][-4000:]}")
        time.sleep(0.1)
    process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=END_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"kedro run did not stop within {END_TIMEOUT_S} s of {signal.Signals(signum).name}")
    return process.returncode, output


def test_a_failing_node_marks_the_run_failed(project: Path) -> None:
    before = _run_ids(project)
    process = _start(project, "status_probe_fail")
    output, _ = process.communicate(timeout=START_TIMEOUT_S)
    assert process.returncode != 0, output[-4000:]
    assert "planted failure of the status probe" in output
    assert _new_run_status(project, before) == "FAILED", output[-4000:]


def test_sigterm_marks_the_run_killed(project: Path) -> None:
    before = _run_ids(project)
    code, output = _stop_when_started(_start(project, "status_probe_wait"), project, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, output[-4000:]
    assert "SIGTERM received" in output
    assert _new_run_status(project, before) == "KILLED", output[-4000:]


def test_sigint_marks_the_run_killed(project: Path) -> None:
    before = _run_ids(project)
    code, output = _stop_when_started(_start(project, "status_probe_wait"), project, signal.SIGINT)
    assert code != 0, output[-4000:]
    assert "SIGINT received" in output
    assert _new_run_status(project, before) == "KILLED", output[-4000:]
