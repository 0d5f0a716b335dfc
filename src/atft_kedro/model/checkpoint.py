"""Checkpoints (weights + manifest + resolved parameters) and prediction with a trained model.

A checkpoint is a plain dict that ``torch.load(weights_only=True)`` can read:

- ``format_version`` (int), ``state_dict`` (CPU tensors),
- ``manifest`` (the feature manifest as a JSON dict) and ``manifest_hash``,
- ``model_params`` / ``loss_params`` / ``training_params`` (``model_dump(mode="json")``),
- ``active_components``: {"fan": bool, "gat": bool}, the branches on when the kept weights
  were validated (the best epoch's phase),
- ``normalizer_identity`` (str, from the caller), ``horizons`` (list of int),
- ``history_summary`` (dict of plain numbers/strings).

Forecasting runs where training ran: ``build_model_from_checkpoint`` puts the model on the
checkpoint's ``training.device`` (CUDA without a GPU is an error, never a silent CPU run)
and ``forecast_days`` moves the model input's needed days there once, then forecasts
``training.forecast_days_per_batch`` days per forward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from atft_kedro.model.data import DeviceTensors, GraphTensors, day_batch, device_tensors
from atft_kedro.model.network import ATFTGATFAN
from atft_kedro.model.params import LossParams, ModelParams, TrainingParams
from atft_kedro.schemas.manifest import FeatureManifest, ManifestMismatchError
from atft_kedro.schemas.model_input import ModelInput

CHECKPOINT_FORMAT = 1


def as_graph_tensors(stock_graph: GraphTensors | Any, model_input: ModelInput) -> GraphTensors:
    """``stock_graph`` if already packed, else the Polars table packed for ``model_input``.

    The packing lives in the node layer (``atft_kedro.graph_packing``, which needs Polars); it
    is imported only when a table is passed, so this package imports without Polars.
    """
    if isinstance(stock_graph, GraphTensors):
        return stock_graph
    from atft_kedro.graph_packing import pack_graph

    return pack_graph(stock_graph, model_input.dates, model_input.codes)


def make_checkpoint(
    model: ATFTGATFAN,
    manifest: FeatureManifest,
    model_params: ModelParams,
    loss_params: LossParams,
    training_params: TrainingParams,
    horizons: list[int],
    normalizer_identity: str,
    history_summary: dict,
) -> dict:
    """Assemble the checkpoint dict of a trained model (weights copied to the CPU)."""
    return {
        "format_version": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
        "manifest": manifest.to_json_dict(),
        "manifest_hash": manifest.hash,
        "model_params": model_params.model_dump(mode="json"),
        "loss_params": loss_params.model_dump(mode="json"),
        "training_params": training_params.model_dump(mode="json"),
        "active_components": {"fan": bool(model.use_fan), "gat": bool(model.use_gat)},
        "normalizer_identity": str(normalizer_identity),
        "horizons": [int(h) for h in horizons],
        "history_summary": dict(history_summary),
    }


def build_model_from_checkpoint(
    checkpoint: dict, manifest: FeatureManifest, device: str | None = None
) -> ATFTGATFAN:
    """Rebuild the trained model in eval mode on its training device.

    Args:
        checkpoint: a dict from ``make_checkpoint`` (or the ``model_checkpoint`` dataset).
        manifest: the current feature manifest (must equal the checkpoint's).
        device: "cpu" or "cuda"; None = the checkpoint's ``training.device``.

    The model carries ``forecast_days_per_batch`` and ``precision`` (the checkpoint's
    ``training.forecast_days_per_batch`` and ``training.precision``) for ``forecast_days``.

    Raises:
        ValueError: a checkpoint of another ``format_version``.
        ManifestMismatchError: ``manifest`` (the current features) differs from the checkpoint's,
            naming the differing features.
        CudaUnavailableError: the device is CUDA and this machine has none.
        KeyError: a checkpoint written before ``training.forecast_days_per_batch`` existed.
    """
    from atft_kedro.model.trainer import resolve_device

    if checkpoint.get("format_version") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"the checkpoint has format_version {checkpoint.get('format_version')!r}, expected {CHECKPOINT_FORMAT}: "
            "re-run the training pipeline"
        )
    manifest.require_same(FeatureManifest.from_json_dict(checkpoint["manifest"]), "the checkpoint")
    params = ModelParams.model_validate(checkpoint["model_params"])
    training = checkpoint["training_params"]
    if "forecast_days_per_batch" not in training:
        raise KeyError(
            "the checkpoint's training_params have no 'forecast_days_per_batch' (written by an older version): "
            "re-run the training pipeline"
        )
    model = ATFTGATFAN(params, n_features=len(manifest), n_horizons=len(checkpoint["horizons"]))
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    model.set_components(**checkpoint["active_components"])
    model.manifest_hash = checkpoint["manifest_hash"]
    model.forecast_days_per_batch = int(training["forecast_days_per_batch"])
    model.precision = str(training["precision"])
    return model.to(resolve_device(device or training["device"])).eval()


def _check_input(model: ATFTGATFAN, model_input: ModelInput) -> None:
    expected = getattr(model, "manifest_hash", None)
    if expected is not None and expected != model_input.manifest_hash:
        raise ManifestMismatchError(
            f"model input follows feature manifest {model_input.manifest_hash[:12]} but the model was trained "
            f"on {expected[:12]}; rebuild the model input or retrain"
        )
    if model_input.n_features != model.n_features:
        raise ValueError(f"model input has {model_input.n_features} features, the model expects {model.n_features}")
    if model_input.targets.shape[2] != model.n_horizons:
        raise ValueError(f"model input has {model_input.targets.shape[2]} horizons, the model {model.n_horizons}")


@torch.no_grad()
def forecast_days(
    model: ATFTGATFAN,
    model_input: ModelInput,
    stock_graph: GraphTensors | Any,
    day_indices: np.ndarray,
    days_per_batch: int | None = None,
) -> np.ndarray:
    """Quantile forecasts for the given days, in eval mode.

    The days the windows need are moved to the model's device once (float32, pinned copy on
    CUDA); the forecasts stay there until one copy back at the end.

    Args:
        model: the model, on the device to forecast on.
        model_input: dense input covering ``day_indices`` and their windows.
        stock_graph: ``GraphTensors`` packed for ``model_input`` or the Polars ``stock_graph``
            table (packed by ``atft_kedro.graph_packing``).
        day_indices: days to forecast (indices into ``model_input``).
        days_per_batch: days per forward pass (memory only); None = the model's
            ``forecast_days_per_batch`` (set by ``build_model_from_checkpoint``).

    Returns:
        quantiles [len(days), N, H, Q] float32 (NaN for stocks not in the day's mask).
    """
    _check_input(model, model_input)
    days_per_batch = days_per_batch or getattr(model, "forecast_days_per_batch", None)
    if not days_per_batch:
        raise ValueError("forecast_days needs days_per_batch (or a model built by build_model_from_checkpoint)")
    model.eval()
    day_indices = np.asarray(day_indices, dtype=np.int64)
    device = next(model.parameters()).device
    window = model.params.window_days
    n_days, n_stocks = len(day_indices), model_input.n_stocks
    n_q = len(model.params.quantiles)
    out = np.full((n_days, n_stocks, model.n_horizons, n_q), np.nan, dtype=np.float32)
    if n_days == 0:
        return out
    lo, hi = max(0, int(day_indices.min()) - window + 1), int(day_indices.max()) + 1
    part = ModelInput(
        features=model_input.features[lo:hi],
        mask=model_input.mask[lo:hi],
        targets=model_input.targets[lo:hi],
        dates=model_input.dates[lo:hi],
        codes=model_input.codes,
        horizons=model_input.horizons,
        feature_names=model_input.feature_names,
        manifest_hash=model_input.manifest_hash,
    )
    tensors = device_tensors(part, device)
    if isinstance(stock_graph, GraphTensors):
        graph = GraphTensors(
            stock_graph.edge_index, stock_graph.edge_attr, stock_graph.graph_ptr, stock_graph.day_graph[lo:hi]
        )
    else:
        graph = as_graph_tensors(stock_graph, part)
    out[:] = forecast_tensors(model, tensors, graph.to(device), day_indices - lo, days_per_batch).cpu().numpy()
    return out


@torch.no_grad()
def forecast_tensors(
    model: ATFTGATFAN,
    tensors: DeviceTensors,
    graph: GraphTensors,
    day_indices: np.ndarray,
    days_per_batch: int,
) -> torch.Tensor:
    """Forecast days of a model input already on the model's device; results stay there.

    Runs under bf16 autocast when the model was trained with ``precision: bf16`` (its
    ``precision`` attribute, set by ``build_model_from_checkpoint``; the heads stay float32).

    Args:
        tensors, graph: on the model's device; ``day_indices`` index their days.

    Returns:
        quantiles [len(days), N, H, Q] float32 (NaN for stocks not in the day's mask).
    """
    model.eval()
    device = tensors.device
    n_stocks, n_q = tensors.n_stocks, len(model.params.quantiles)
    forecasts = torch.full((len(day_indices), n_stocks, model.n_horizons, n_q), float("nan"), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=getattr(model, "precision", "fp32") == "bf16")
    for start in range(0, len(day_indices), days_per_batch):
        chunk = day_indices[start : start + days_per_batch]
        batch = day_batch(tensors, chunk, model.params.window_days, graph)
        with autocast:
            quantiles = model(batch.x, batch.stock_mask, batch.edge_index, batch.edge_attr, batch.time_mask)
        q = quantiles.float().reshape(len(chunk), n_stocks, model.n_horizons, n_q)
        forecasts[start : start + len(chunk)] = torch.where(batch.day_mask[..., None, None], q, float("nan"))
    return forecasts

