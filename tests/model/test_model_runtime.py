"""training.threads reaches torch and, through threadpoolctl, the BLAS/OpenMP pools."""

from __future__ import annotations

import logging

import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime before the limits apply
import torch
from threadpoolctl import threadpool_info

from atft_kedro.runtime import RuntimeHook, apply_threads, available_cores, resolve_threads

from model_fakes import BASE_TRAINING


def _pools() -> dict[str, int]:
    return {f"{p['user_api']}:{p['filepath']}": p["num_threads"] for p in threadpool_info()}


def test_threads_reach_torch_and_every_loaded_pool():
    before = torch.get_num_threads()
    try:
        assert resolve_threads(None) == available_cores() >= 1
        assert apply_threads(2) == 2
        assert torch.get_num_threads() == 2
        assert _pools() and set(_pools().values()) == {2}
        assert apply_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert set(_pools().values()) == {1}
    finally:
        apply_threads(before)


class _Catalog:
    def __init__(self, training: dict) -> None:
        self.training = training

    def load(self, name: str) -> dict:
        assert name == "params:training"
        return self.training


def test_hook_applies_conf_threads_at_pipeline_start_and_before_nodes(caplog):
    before = torch.get_num_threads()
    hook = RuntimeHook()
    try:
        with caplog.at_level(logging.INFO, logger="atft_kedro.runtime"):
            hook.before_pipeline_run({}, None, _Catalog({**BASE_TRAINING, "threads": 2}))
        assert torch.get_num_threads() == 2 and set(_pools().values()) == {2}
        assert "CPU threads: 2" in caplog.text
        torch.set_num_threads(1)  # something changed it between nodes
        hook.before_node_run(node=None)
        assert torch.get_num_threads() == 2
    finally:
        apply_threads(before)
