"""CPU thread pools of a run: ``training.threads`` applied to torch and, through threadpoolctl,
to the BLAS and OpenMP pools that scikit-learn, LightGBM and NumPy use.

Nothing sets thread counts by itself: PyTorch, OpenMP and BLAS each default to every core,
and on a shared or small machine the pools oversubscribe it (issue 12: an epoch of
``bench_training.py`` took 4.0 s with one thread and 49.6 s with two at a load average of
4-9 on the 2-core machine). ``RuntimeHook`` applies the setting when a pipeline starts and
again before every node (libraries loaded meanwhile, e.g. LightGBM's OpenMP, get it too);
``train_atft_gat_fan`` applies it as well, so a node run by a Dask worker honours it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from kedro.framework.hooks import hook_impl
from threadpoolctl import threadpool_limits

from atft_kedro.model.params import TrainingParams

logger = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None) -> int:
    """``training.threads``, or every available core when it is null."""
    return available_cores() if threads is None else threads


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads and every loaded BLAS/OpenMP pool to ``threads``.

    Returns:
        the number of threads applied.
    """
    n = resolve_threads(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    threadpool_limits(limits=n)  # kept for the process (not a context manager)
    return n


class RuntimeHook:
    """Apply ``params:training``'s ``threads`` at the start of every pipeline and before every node."""

    def __init__(self) -> None:
        self._threads: int | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        raw = catalog.load("params:training")
        training = raw if isinstance(raw, TrainingParams) else TrainingParams.model_validate(raw)
        self._threads = apply_threads(training.threads)
        logger.info(
            "CPU threads: %d for torch, scikit-learn and LightGBM (training.threads: %s; %d cores available)",
            self._threads, training.threads, available_cores(),
        )

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        if self._threads is not None:
            apply_threads(self._threads)
