"""``DaskRunner``: a Kedro runner that runs independent nodes side by side on a ``dask.distributed`` cluster.

``kedro run --pipelines walk_forward --runner atft_kedro.runner.DaskRunner`` submits every node of
the pipeline to a cluster as one Dask task, with its parent nodes' tasks as dependencies, so the
folds and seeds of the walk-forward (independent namespaces) train at the same time, each on one
worker, while the stitching waits for all of them.

Where the cluster comes from (``dask`` block, ``conf/<env>/parameters_dask.yml``, see
:class:`DaskParams`): Kedro builds the runner from ``--runner`` before it reads any configuration
and gives it no parameters, but every run hands the runner the session's catalog, which holds
the resolved parameters of the run environment (``--params`` overrides included) as
``params:<key>``. The runner reads ``params:dask`` from that catalog when the run starts:

* ``scheduler_address: null`` starts an embedded cluster on loopback only (``127.0.0.1``, no
  dashboard), sized by ``local_cluster`` (workers, threads per worker, memory limit per worker),
  and closes it when the run ends, also when it fails;
* ``scheduler_address: tcp://host:8786`` connects to a running cluster and leaves it running.

One GPU per worker: on a machine where torch sees G CUDA devices and
``local_cluster.one_worker_per_gpu`` is true, the embedded cluster has G workers; worker i
sees only device i (``CUDA_VISIBLE_DEVICES=i`` set by its nanny before the worker process
starts) and offers the Dask resource ``GPU=1``. A node tagged ``gpu`` (:data:`GPU_TAG`: the
walk-forward's ATFT-GAT-FAN training and forecast nodes) then asks for ``GPU=1``, so two training nodes never share a device. Where no
worker offers a GPU (a CPU machine, a CPU cluster) the tag is ignored and every node runs on any
worker.

Data between nodes goes through the catalog's files: each worker loads a node's inputs and saves
its outputs with its copy of the catalog (the project's Parquet/JSON/checkpoint datasets), and only
the node's name travels back. A dataset that lives in memory (a ``MemoryDataset``, or a name with no
catalog entry) cannot be shared between worker processes, so a pipeline that writes one is refused
before anything runs, with the list of such datasets and their nodes.

Hooks: the pipeline hooks (``before_pipeline_run``, ``after_pipeline_run``, ``on_pipeline_error``)
run in the ``kedro run`` process as with every runner; node and dataset hooks do not run on the
workers (as with Kedro's ``ParallelRunner``), so MLflow gets the run's parameters and artifacts but
not the per-epoch metrics that the sequential runner logs from ``training_history``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kedro.io import MemoryDataset
from kedro.runner import AbstractRunner
from pydantic import Field, ValidationError

from atft_kedro.schemas.strict import StrictModel

if TYPE_CHECKING:
    from distributed import Client
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node
    from pluggy import PluginManager

logger = logging.getLogger(__name__)

#: The parameter block the runner reads (``conf/<env>/parameters_dask.yml``).
PARAMS_DATASET = "params:dask"
#: Loopback only: an embedded cluster never listens on another interface.
LOOPBACK = "127.0.0.1"
#: The Dask resource a GPU worker offers and a GPU node asks for.
GPU_RESOURCE = "GPU"
#: The node tag that asks for one GPU (the walk-forward's ATFT-GAT-FAN training and forecast nodes).
GPU_TAG = "gpu"


class LocalClusterParams(StrictModel):
    """The embedded cluster (``dask.local_cluster``), started when no scheduler address is given."""

    n_workers: int = Field(ge=1, description="worker processes on a machine without CUDA devices")
    threads_per_worker: int = Field(ge=1, description="nodes one worker runs at the same time")
    memory_limit: str = Field(min_length=1, description="per worker, e.g. '4GiB'; the nanny restarts a worker "
                                                        "past it")
    one_worker_per_gpu: bool = Field(description="where torch sees G CUDA devices: G workers, worker i pinned "
                                                 "to device i with the resource GPU=1 (n_workers is not used)")


class DaskParams(StrictModel):
    """``params:dask``: where the ``DaskRunner``'s cluster comes from."""

    scheduler_address: str | None = Field(description="e.g. 'tcp://10.0.0.5:8786' for a running cluster; "
                                                      "null starts the embedded local_cluster")
    connect_timeout_s: float = Field(gt=0, description="how long to wait for the scheduler and the workers")
    local_cluster: LocalClusterParams


class InMemoryDatasetError(ValueError):
    """A node writes a dataset that lives in memory: worker processes cannot share it."""


def read_dask_params(catalog: CatalogProtocol) -> DaskParams:
    """The validated ``dask`` block of the run's parameters, read from the run's catalog.

    Raises:
        ValueError: the catalog has no ``params:dask`` or the block is invalid; the message
            names ``conf/<env>/parameters_dask.yml`` and every wrong key.
    """
    if PARAMS_DATASET not in catalog:
        raise ValueError(
            "DaskRunner reads its cluster from the 'dask' block of the run's parameters "
            "(conf/base/parameters_dask.yml, or conf/<env>/parameters_dask.yml), but the catalog has no "
            f"'{PARAMS_DATASET}'"
        )
    raw = catalog.load(PARAMS_DATASET)
    if isinstance(raw, DaskParams):
        return raw
    try:
        return DaskParams.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"dask.{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                             for e in exc.errors())
        raise ValueError(f"invalid 'dask' parameters (conf/<env>/parameters_dask.yml): {problems}") from exc


def in_memory_outputs(pipeline: Pipeline, catalog: CatalogProtocol) -> dict[str, str]:
    """Every dataset a node of ``pipeline`` writes that lives in memory: name -> the node writing it."""
    found = {}
    for node in pipeline.nodes:
        for name in node.outputs:
            dataset = catalog.get(name, fallback_to_runtime_pattern=True)
            if isinstance(dataset, MemoryDataset) or getattr(dataset, "_EPHEMERAL", False):
                found[name] = node.name
    return found


def check_no_memory_datasets(pipeline: Pipeline, catalog: CatalogProtocol) -> None:
    """Raise :class:`InMemoryDatasetError` when a node of ``pipeline`` writes an in-memory dataset."""
    found = in_memory_outputs(pipeline, catalog)
    if found:
        listed = ", ".join(f"'{name}' (written by node '{node}')" for name, node in sorted(found.items())[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        raise InMemoryDatasetError(
            f"DaskRunner runs nodes in separate worker processes, which share data only through the "
            f"catalog's files, but {len(found)} dataset(s) would live in memory: {listed}{more}. Give each a "
            "file entry in conf/base/catalog*.yml, or run this pipeline with the SequentialRunner"
        )


def worker_specs(local: LocalClusterParams, n_gpus: int) -> dict[str, dict[str, Any]]:
    """The nanny options of every embedded worker: name -> options (loopback, threads, memory, GPU pinning).

    With ``n_gpus`` > 0 and ``one_worker_per_gpu``: one worker per device, worker ``gpu-i`` seeing only
    device i and offering ``GPU=1``; otherwise ``n_workers`` CPU workers with no resources.
    """
    base = {"host": LOOPBACK, "nthreads": local.threads_per_worker, "memory_limit": local.memory_limit}
    if n_gpus > 0 and local.one_worker_per_gpu:
        return {f"gpu-{i}": {**base, "resources": {GPU_RESOURCE: 1}, "env": {"CUDA_VISIBLE_DEVICES": str(i)}}
                for i in range(n_gpus)}
    return {f"cpu-{i}": dict(base) for i in range(local.n_workers)}


def visible_cuda_devices() -> int:
    """How many CUDA devices torch sees in this process (0 on a CPU build or a machine without GPUs)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@contextlib.contextmanager
def dask_client(params: DaskParams, n_gpus: int | None = None) -> Iterator[Client]:
    """A client of the configured cluster; an embedded one is started here and closed on exit.

    Args:
        params: the ``dask`` block.
        n_gpus: CUDA devices to pin workers to; by default those torch sees here.
    """
    from distributed import Client, Nanny, Scheduler, SpecCluster

    if params.scheduler_address is not None:
        logger.info("DaskRunner: connecting to the cluster at %s", params.scheduler_address)
        with Client(params.scheduler_address, timeout=params.connect_timeout_s) as client:
            yield client
        return
    specs = worker_specs(params.local_cluster, visible_cuda_devices() if n_gpus is None else n_gpus)
    cluster = SpecCluster(
        scheduler={"cls": Scheduler, "options": {"host": LOOPBACK, "dashboard_address": None}},
        workers={name: {"cls": Nanny, "options": options} for name, options in specs.items()},
        name="atft-kedro-local",
    )
    try:
        logger.info("DaskRunner: started a local cluster on %s: %s", cluster.scheduler_address,
                    ", ".join(f"{name} ({o['nthreads']} thread(s), {o['memory_limit']}"
                              f"{', GPU ' + o['env']['CUDA_VISIBLE_DEVICES'] if 'env' in o else ''})"
                              for name, o in specs.items()))
        with Client(cluster, timeout=params.connect_timeout_s) as client:
            client.wait_for_workers(len(specs), timeout=params.connect_timeout_s)
            yield client
    finally:
        cluster.close()


def cluster_offers_gpus(client: Client) -> bool:
    """Whether some worker of the cluster offers the ``GPU`` resource."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return any(info.get("resources", {}).get(GPU_RESOURCE, 0) > 0 for info in workers.values())


def run_node_on_worker(node: Node, catalog: CatalogProtocol, is_async: bool, run_id: str | None,
                       *parents: str) -> tuple[str, str]:
    """Run ``node`` with the worker's copy of the catalog (inputs and outputs are files).

    ``parents`` are the names the parent nodes' tasks returned: they only make Dask wait for them.
    Returns the node's name and the worker that ran it.
    """
    from distributed import get_worker
    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.runner.task import Task

    Task(node=node, catalog=catalog, is_async=is_async, hook_manager=_create_hook_manager(),
         run_id=run_id).execute()
    return node.name, get_worker().name


class DaskRunner(AbstractRunner):
    """Runs every node as a Dask task on the cluster of ``params:dask`` (see the module's docstring)."""

    def __init__(self, is_async: bool = False, client: Client | None = None) -> None:
        """
        Args:
            is_async: load and save each node's datasets with threads (Kedro's ``--async``).
            client: a client of a running cluster to use instead of ``params:dask`` (for
                programmatic use); it is left open.
        """
        super().__init__(is_async=is_async)
        self._client = client

    def _get_executor(self, max_workers: int) -> None:  # the cluster is the executor
        return None

    def _run(self, pipeline: Pipeline, catalog: CatalogProtocol, hook_manager: PluginManager | None = None,
             run_id: str | None = None) -> None:
        check_no_memory_datasets(pipeline, catalog)
        if self._client is not None:
            self._run_on(self._client, pipeline, catalog, run_id)
            return
        with dask_client(read_dask_params(catalog)) as client:
            self._run_on(client, pipeline, catalog, run_id)

    def _run_on(self, client: Client, pipeline: Pipeline, catalog: CatalogProtocol, run_id: str | None) -> None:
        from distributed import as_completed

        gpus = cluster_offers_gpus(client)
        if not gpus and any(GPU_TAG in node.tags for node in pipeline.nodes):
            self._logger.info("DaskRunner: no worker offers a GPU; nodes tagged '%s' run on any worker", GPU_TAG)
        shared_catalog = client.scatter(catalog, broadcast=True, hash=False)
        dependencies = pipeline.node_dependencies
        token = uuid.uuid4().hex[:8]  # unique task keys: a long-lived cluster never reuses an old result
        futures: dict[Node, Any] = {}
        for node in pipeline.nodes:  # topologically sorted: parents are submitted first
            resources = {GPU_RESOURCE: 1} if gpus and GPU_TAG in node.tags else None
            futures[node] = client.submit(
                run_node_on_worker, node, shared_catalog, self._is_async, run_id,
                *(futures[parent] for parent in sorted(dependencies[node], key=lambda n: n.name)),
                key=f"{node.name}-{token}", resources=resources, pure=False,
            )
        done: list[Node] = []
        by_key = {future.key: node for node, future in futures.items()}
        try:
            for future in as_completed(list(futures.values())):
                node = by_key[future.key]
                name, worker = future.result()  # re-raises the node's own exception
                done.append(node)
                self._logger.info("Completed node: %s (on worker %s)", name, worker)
                self._logger.info("Completed %d out of %d tasks", len(done), len(futures))
        except BaseException:
            client.cancel(list(futures.values()))
            self._suggest_resume_scenario(pipeline, done, catalog)
            raise
