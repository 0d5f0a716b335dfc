"""`kedro viz` shows every registered pipeline and every data layer, left to right.

The test starts the real ``kedro viz run`` CLI on a free loopback port (``--env test``,
no browser), reads its REST API and stops the whole process group in ``finally``.

Only loopback traffic: ``kedro viz run`` asks PyPI for its newest version at start-up;
the subprocess gets ``HTTP(S)_PROXY`` pointing at a loopback port that is bound but never
listens (so that request is refused at once, on this machine) and ``NO_PROXY`` for the
loopback host it serves on. The test's own requests bypass any proxy.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kedro_project import PROJECT_ROOT, load_conf

HOST = "127.0.0.1"
ENV = "test"
#: ``kedro viz run`` refuses a port above this one (it calls the rest "system ports").
MAX_VIZ_PORT = 49151
#: Longest wait for the server to answer ``/api/main`` (it starts in ~15 s on a busy 2-core machine).
STARTUP_TIMEOUT_S = 90.0
PIPELINES = ["ingestion", "feature_engineering", "normalization", "training", "evaluation", "inference",
             "walk_forward", "__default__"]
#: The catalog's layers, in data-flow order: kedro viz must draw them left to right in this order.
LAYERS = ["raw", "intermediate", "feature", "model_input", "models", "model_output", "reporting"]

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _bound_port() -> socket.socket:
    """A loopback socket bound to a free port (not listening: connecting to it is refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    return sock


def _free_viz_port() -> int:
    """A free loopback port that ``kedro viz run`` accepts (it refuses ports above 49151)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, MAX_VIZ_PORT - 5)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in 20000..{MAX_VIZ_PORT - 5}")


def _get_json(url: str, timeout: float = 10.0) -> Any:
    with _NO_PROXY_OPENER.open(url, timeout=timeout) as response:
        return json.loads(response.read())


def _stop(process: subprocess.Popen) -> None:
    """Terminate the viz process group (the CLI and the server it spawned), then kill what is left.

    The group id is the CLI's pid (``start_new_session=True``); the server child stays in it
    even when the CLI itself has already exited.
    """
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(0.5)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything in the group that ignored SIGTERM
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def viz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a ``kedro viz run --env test`` server started from the project root."""
    log_path = tmp_path_factory.mktemp("kedro_viz") / "viz.log"
    blackhole = _bound_port()
    port = _free_viz_port()
    loopback_proxy = f"http://{HOST}:{blackhole.getsockname()[1]}"
    env = {
        **os.environ,
        "HTTP_PROXY": loopback_proxy, "HTTPS_PROXY": loopback_proxy,
        "http_proxy": loopback_proxy, "https_proxy": loopback_proxy,
        "NO_PROXY": f"{HOST},localhost", "no_proxy": f"{HOST},localhost",
    }
    kedro = str(Path(sys.executable).with_name("kedro"))
    command = [kedro, "viz", "run", "--host", HOST, "--port", str(port), "--no-browser", "--env", ENV]
    base = f"http://{HOST}:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                try:
                    _get_json(f"{base}/api/main", timeout=5)
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    pytest.fail(f"kedro viz did not answer on {base}/api/main within {STARTUP_TIMEOUT_S:.0f} s "
                                f"(exit code {process.poll()}); its output ends with:\n{tail}")
                time.sleep(0.5)
            yield base
        finally:
            _stop(process)
            blackhole.close()


def _catalog_layers() -> dict[str, str]:
    """Dataset name -> kedro-viz layer, as the catalog of ``env`` declares them."""
    catalog = load_conf(ENV)["catalog"]
    return {
        name: entry["metadata"]["kedro-viz"]["layer"]
        for name, entry in catalog.items()
        if not name.startswith("_") and "layer" in entry.get("metadata", {}).get("kedro-viz", {})
    }


def test_viz_lists_every_registered_pipeline(viz_url: str) -> None:
    main = _get_json(f"{viz_url}/api/main")
    assert main["selected_pipeline"] == "__default__"
    assert sorted(p["id"] for p in main["pipelines"]) == sorted(PIPELINES)


def test_viz_draws_the_layers_left_to_right_in_data_flow_order(viz_url: str) -> None:
    main = _get_json(f"{viz_url}/api/main")
    assert main["layers"] == LAYERS


def test_viz_puts_every_catalog_dataset_in_its_layer(viz_url: str) -> None:
    declared = _catalog_layers()
    assert set(declared.values()) == set(LAYERS)
    shown = {}
    for pipeline_id in PIPELINES:  # the default pipeline is the single chain; walk_forward has its own datasets
        nodes = _get_json(f"{viz_url}/api/pipelines/{pipeline_id}")["nodes"]
        shown.update({n["name"]: n.get("layer") for n in nodes if n["type"] == "data"})
    # dataset factories ("fold_{k}.splits") appear as their resolved names ("fold_0.splits")
    patterns = {name: layer for name, layer in declared.items() if "{" in name}
    resolved = {name: layer for name, layer in declared.items() if "{" not in name}
    missing = sorted(set(resolved) - set(shown))
    assert not missing, f"catalog datasets missing from kedro viz: {missing}"
    for pattern, layer in patterns.items():
        regex = "[^.]+".join(re.escape(part) for part in re.split(r"\{[^}]*\}", pattern))
        matches = {n: shown[n] for n in shown if re.fullmatch(regex, n)}
        assert matches and set(matches.values()) == {layer}, (pattern, matches)
    wrong = {name: (shown[name], layer) for name, layer in resolved.items() if shown[name] != layer}
    assert not wrong, f"datasets in the wrong layer (shown, declared): {wrong}"


def test_viz_shows_each_pipeline_with_its_own_nodes(viz_url: str) -> None:
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    for pipeline_id in PIPELINES:
        graph = _get_json(f"{viz_url}/api/pipelines/{pipeline_id}")
        assert graph["selected_pipeline"] == pipeline_id
        shown = sorted(n["full_name"] for n in graph["nodes"] if n["type"] == "task")
        expected = sorted(n.name for n in pipelines[pipeline_id].nodes)
        assert shown == expected, pipeline_id
