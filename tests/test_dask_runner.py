"""``atft_kedro.runner.DaskRunner``: nodes side by side on a loopback cluster, one GPU per worker, files only.

The fast tests start a real embedded cluster (2 worker processes on 127.0.0.1) on tiny pipelines
whose node functions record which process and which device ran them. The slow test runs the test
environment's walk-forward (2 folds, 2 seeds) sequentially and on the cluster and compares the
forecasts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import cloudpickle
import polars as pl
import psutil
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro_datasets.json import JSONDataset
from polars.testing import assert_frame_equal

from atft_kedro.evaluation.walk_forward import rank_average
from atft_kedro.runner import (
    GPU_TAG,
    DaskParams,
    DaskRunner,
    InMemoryDatasetError,
    LocalClusterParams,
    dask_client,
    read_dask_params,
    worker_specs,
)

# the node functions below travel to the worker processes by value (tests/ is not on their path)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: Longest a tiny pipeline may take on the cluster, start included (a busy 2-core machine).
CLUSTER_TIMEOUT_S = 120


def _params(n_workers: int = 2, one_worker_per_gpu: bool = True) -> DaskParams:
    return DaskParams(scheduler_address=None, connect_timeout_s=CLUSTER_TIMEOUT_S,
                      local_cluster=LocalClusterParams(n_workers=n_workers, threads_per_worker=1,
                                                       memory_limit="1GiB", one_worker_per_gpu=one_worker_per_gpu))


def record_worker(seconds: float) -> dict:
    """Sleep ``seconds`` and say which process, which visible CUDA devices and when."""
    start = time.time()
    time.sleep(seconds)
    return {"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "start": start, "end": time.time()}


def both(a: dict, b: dict) -> dict:
    return {"a": a, "b": b}


def _side_by_side(tmp_path: Path, tags: list[str]) -> tuple[Pipeline, DataCatalog]:
    pipeline = Pipeline([
        node(record_worker, "params:sleep_s", "a", name="fold_a", tags=tags),
        node(record_worker, "params:sleep_s", "b", name="fold_b", tags=tags),
        node(both, ["a", "b"], "joined", name="join"),
    ])
    catalog = DataCatalog({name: JSONDataset(filepath=str(tmp_path / f"{name}.json")) for name in ("a", "b", "joined")})
    catalog["params:sleep_s"] = MemoryDataset(3.0)
    return pipeline, catalog


def _overlap(a: dict, b: dict) -> float:
    return min(a["end"], b["end"]) - max(a["start"], b["start"])


def test_worker_specs_pin_one_gpu_per_worker_on_loopback() -> None:
    local = _params(n_workers=3).local_cluster
    gpu = worker_specs(local, n_gpus=2)
    assert [o["env"]["CUDA_VISIBLE_DEVICES"] for o in gpu.values()] == ["0", "1"]
    assert all(o["resources"] == {"GPU": 1} and o["host"] == "127.0.0.1" for o in gpu.values())
    cpu = worker_specs(local, n_gpus=0)
    assert len(cpu) == 3 and all("resources" not in o and "env" not in o for o in cpu.values())
    assert all(o["host"] == "127.0.0.1" and o["nthreads"] == 1 and o["memory_limit"] == "1GiB" for o in cpu.values())
    assert len(worker_specs(_params(n_workers=3, one_worker_per_gpu=False).local_cluster, n_gpus=2)) == 3


def test_independent_nodes_run_side_by_side_in_two_worker_processes(tmp_path: Path) -> None:
    """CPU path: no worker offers a GPU, so the ``gpu`` tag is ignored and both nodes run at once."""
    pipeline, catalog = _side_by_side(tmp_path, tags=[GPU_TAG])
    with dask_client(_params(), n_gpus=0) as client:
        DaskRunner(client=client).run(pipeline, catalog)
        pids = set(client.run(os.getpid).values())
    joined = json.loads((tmp_path / "joined.json").read_text())
    a, b = joined["a"], joined["b"]
    assert a["pid"] != b["pid"] and {a["pid"], b["pid"]} <= pids
    assert os.getpid() not in pids
    assert _overlap(a, b) > 1.0  # ran at the same time (each sleeps 3 s)
    assert a["cuda_visible_devices"] is None and b["cuda_visible_devices"] is None
    deadline = time.time() + 30
    while time.time() < deadline and any(psutil.pid_exists(p) for p in pids):
        time.sleep(0.5)
    assert not any(psutil.pid_exists(p) for p in pids), "the embedded cluster's workers outlived the run"


def test_gpu_nodes_get_one_device_each_on_a_gpu_cluster(tmp_path: Path) -> None:
    """GPU path, on a CPU machine: the workers are pinned as on a 2-GPU box (``n_gpus=2``)."""
    pipeline, catalog = _side_by_side(tmp_path, tags=[GPU_TAG])
    with dask_client(_params(n_workers=1), n_gpus=2) as client:
        resources = {w["name"]: w["resources"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}
        DaskRunner(client=client).run(pipeline, catalog)
    assert resources == {"gpu-0": {"GPU": 1}, "gpu-1": {"GPU": 1}}
    joined = json.loads((tmp_path / "joined.json").read_text())
    assert sorted([joined["a"]["cuda_visible_devices"], joined["b"]["cuda_visible_devices"]]) == ["0", "1"]
    assert _overlap(joined["a"], joined["b"]) > 1.0


def test_a_gpu_node_never_shares_a_worker_device(tmp_path: Path) -> None:
    """One GPU worker and two ``gpu`` nodes: the second waits for the first (resource GPU=1)."""
    pipeline, catalog = _side_by_side(tmp_path, tags=[GPU_TAG])
    local = LocalClusterParams(n_workers=1, threads_per_worker=2, memory_limit="1GiB", one_worker_per_gpu=True)
    with dask_client(DaskParams(scheduler_address=None, connect_timeout_s=CLUSTER_TIMEOUT_S, local_cluster=local),
                     n_gpus=1) as client:
        DaskRunner(client=client).run(pipeline, catalog)
    joined = json.loads((tmp_path / "joined.json").read_text())
    assert joined["a"]["pid"] == joined["b"]["pid"]  # one worker, two threads
    assert _overlap(joined["a"], joined["b"]) < 0  # but never at the same time on its one GPU


def test_a_dataset_in_memory_between_nodes_is_refused_before_anything_runs(tmp_path: Path) -> None:
    pipeline = Pipeline([
        node(record_worker, "params:sleep_s", "in_memory", name="first"),
        node(both, ["in_memory", "in_memory"], "joined", name="second"),
    ])
    catalog = DataCatalog({"joined": JSONDataset(filepath=str(tmp_path / "joined.json"))})
    catalog["params:sleep_s"] = MemoryDataset(0.0)
    with pytest.raises(InMemoryDatasetError, match=r"'in_memory' \(written by node 'first'\)"):
        DaskRunner().run(pipeline, catalog)
    assert not (tmp_path / "joined.json").exists()


def test_dask_parameters_are_checked_and_named(tmp_path: Path) -> None:
    catalog = DataCatalog()
    with pytest.raises(ValueError, match="conf/base/parameters_dask.yml.*has no 'params:dask'"):
        read_dask_params(catalog)
    good = _params().model_dump()
    catalog["params:dask"] = MemoryDataset({**good, "local_cluster": {**good["local_cluster"], "n_workrs": 2}})
    with pytest.raises(ValueError, match=r"dask\.local_cluster\.n_workrs: Extra inputs are not permitted"):
        read_dask_params(catalog)
    catalog["params:dask"] = MemoryDataset(good)
    assert read_dask_params(catalog) == _params()


def test_project_conf_has_a_dask_block_in_base_and_test() -> None:
    from kedro_project import load_conf

    for env in ("base", "test"):
        params = DaskParams.model_validate(load_conf(env)["parameters"]["dask"])
        assert params.scheduler_address is None  # an embedded loopback cluster unless conf names one


# ------------------------------------------------------------------------------ same forecasts, slow


def _two_fold_project(source: Path, destination: Path) -> Path:
    """A copy of a finished test-env project with 2 folds, 2 seeds and shorter training (registered in conf/base)."""
    import yaml

    ignore = shutil.ignore_patterns("05_model_input", "06_models", "07_model_output", "08_reporting", "mlruns",
                                    "__pycache__")
    for folder in ("conf", "src", "data", "logs"):
        shutil.copytree(source / folder, destination / folder, ignore=ignore)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy2(source / name, destination / name)

    def edit(path: Path, change) -> None:
        conf = yaml.safe_load(path.read_text())
        change(conf)
        path.write_text(yaml.safe_dump(conf, sort_keys=False))

    for env in ("base", "test"):
        edit(destination / "conf" / env / "parameters_normalization.yml",
             lambda c: c["normalization"]["folds"].update(count=2))
        edit(destination / "conf" / env / "parameters_walk_forward.yml", lambda c: c["walk_forward"].update(seeds=2))
    edit(destination / "conf/test/parameters_walk_forward.yml", lambda c: c["walk_forward"].update(training={
        "max_epochs": 1, "max_train_days_per_epoch": 30,
        "phases": [{"name": "fan_gat", "epochs": 1, "lr_scale": 1.0, "fan": True, "gat": True}]}))
    edit(destination / "conf/test/parameters_baselines.yml", lambda c: (
        c["baselines"]["lightgbm"].update(num_boost_round=20), c["baselines"]["hist_gbm"].update(max_iter=10)))
    return destination


@pytest.mark.slow
def test_two_fold_walk_forward_on_a_local_cluster_equals_the_sequential_run(test_env_run, tmp_path: Path) -> None:
    from kedro_project import kedro_run_test_env

    project = _two_fold_project(test_env_run.path, tmp_path / "project")
    kedro_run_test_env(project, "--pipelines", "normalization", "--nodes", "make_splits")
    data = project / "data" / "test"
    assert len(json.loads((data / "05_model_input/splits.json").read_text())["folds"]) == 2
    outputs = ("07_model_output/walk_forward/predictions.parquet", "07_model_output/walk_forward/seed_predictions.parquet")

    started = time.perf_counter()
    kedro_run_test_env(project, "--pipelines", "walk_forward")
    sequential_s = time.perf_counter() - started
    sequential = {name: pl.read_parquet(data / name) for name in outputs}
    shutil.rmtree(data / "07_model_output/walk_forward")
    shutil.rmtree(data / "06_models/walk_forward")

    started = time.perf_counter()
    log = kedro_run_test_env(project, "--pipelines", "walk_forward", "--runner", "atft_kedro.runner.DaskRunner")
    dask_s = time.perf_counter() - started
    print(f"2 folds x 2 seeds: sequential {sequential_s:.0f} s, DaskRunner (2 workers) {dask_s:.0f} s, "
          f"load average {os.getloadavg()}")
    assert "started a local cluster on tcp://127.0.0.1:" in log
    assert "Completed node: fold_0.seed_1.train_seed_atft_gat_fan (on worker cpu-" in log
    assert {"cpu-0", "cpu-1"} <= {line.split("(on worker ")[1].rstrip(")") for line in log.splitlines()
                                  if "(on worker " in line}

    for name in outputs:
        assert_frame_equal(pl.read_parquet(data / name), sequential[name])  # bit for bit
    seeds = sequential[outputs[1]]
    assert seeds.select("fold", "seed").unique().height == 4
    a = seeds.filter((pl.col("fold") == 0) & (pl.col("seed") == 0))["pred_5d"]
    b = seeds.filter((pl.col("fold") == 0) & (pl.col("seed") == 1))["pred_5d"]
    assert not a.equals(b)  # the seeds really differ, so the rank-average is not one seed's forecast
    fold_0 = [pl.read_parquet(data / f"07_model_output/walk_forward/fold_0/seed_{s}/atft_predictions.parquet")
              for s in range(2)]
    atft = sequential[outputs[0]].filter((pl.col("model") == "atft_gat_fan") & (pl.col("fold") == 0))
    assert_frame_equal(atft.select(rank_average(fold_0).columns).sort("Date", "Code"),
                       rank_average(fold_0).sort("Date", "Code"))
    metrics = json.loads((data / "08_reporting/walk_forward/metrics.json").read_text())
    spread = metrics["walk_forward"]["by_horizon"]["5"]["seed_spread"]
    assert [row["n_seeds"] for row in spread] == [2, 2]
    report = (data / "08_reporting/walk_forward/report.md").read_text()
    assert "## Seeds, 5-day horizon" in report
