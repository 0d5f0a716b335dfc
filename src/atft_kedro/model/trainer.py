"""Training of ATFT-GAT-FAN: phases, AdamW with warm-up + cosine, early stopping, monitoring.

One optimiser step = ``days_per_batch`` trading days, each day's cross-section one graph.
An epoch is one pass over the training days in a seeded random order, or over a fresh
random sample of ``max_train_days_per_epoch`` of them when conf sets it (CPU budgets).
The whole model input lives on the device as tensors (``data.py``). Train metrics (IC,
RankIC per horizon) are the means over all training days of the per-day values of the
training forward passes (train mode, weights changing during the epoch); validation
metrics come from a full eval-mode pass over every validation day after each epoch.

Phases run in order; each sets the FAN/GAT switches and scales the learning rate. Each
phase after the first starts from the best weights so far; a phase ends early after
``patience`` epochs without a better validation RankIC (primary horizon) than the best so
far. The checkpoint keeps the best epoch's weights and the switches that epoch ran with.
The warm-up + cosine schedule spans the planned steps of all phases; a phase that stops
early leaves the rest of its share unused (the next phase continues along the curve).

Numerics and speed: a step whose gradients are not all finite is skipped on the device (the
fused AdamW reads a ``found_inf`` flag, as under a GradScaler: no weight, moment or step
count changes) and counted; the count per epoch is in the history (``skipped_steps``) and an
epoch skipping more than ``training.max_skipped_step_share`` of its steps stops the run
(``NonFiniteGradientError`` naming the epoch). Inside a step nothing is read back to the
host: metrics and counts accumulate on the device and are read once per epoch. The targets
are ranked once per run (``DeviceTensors.target_ranks``). ``training.compile`` wraps the
model in ``torch.compile``. The GAT fusion gate has its own learning-rate multiplier
(``training.gate_lr_scale``) and no weight decay.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from typing import Any

import numpy as np
import torch

from atft_kedro.model.checkpoint import as_graph_tensors, make_checkpoint
from atft_kedro.model.data import DayBatch, DeviceTensors, GraphTensors, day_batch, device_tensors
from atft_kedro.model.losses import combined_loss, day_has_pairs, masked_moments, masked_pearson, rank_ic, valid_mask
from atft_kedro.model.network import ATFTGATFAN
from atft_kedro.model.params import LossParams, ModelParams, PhaseParams, TrainingParams
from atft_kedro.schemas.manifest import FeatureManifest, ManifestMismatchError
from atft_kedro.schemas.model_input import DateRange, ModelInput, Splits

logger = logging.getLogger(__name__)

LOSS_TERMS = ("pinball", "rank", "ic", "sharpe")


class PredictionCollapseError(RuntimeError):
    """The cross-sectional spread of the forecasts stayed below ``collapse.min_spread``."""


class CudaUnavailableError(RuntimeError):
    """``training.device`` is 'cuda' but this machine has no usable CUDA device."""


class NonFiniteGradientError(RuntimeError):
    """An epoch skipped more than ``training.max_skipped_step_share`` of its steps (non-finite gradients)."""


def resolve_device(params: TrainingParams | str) -> torch.device:
    """The requested device (``training.device`` or its value); never falls back silently from CUDA to CPU."""
    name = params if isinstance(params, str) else params.device
    if name == "cuda" and not torch.cuda.is_available():
        raise CudaUnavailableError(
            "training.device is 'cuda' but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use an environment with "
            "training.device: cpu or run on a CUDA machine"
        )
    return torch.device(name)


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """Turn on deterministic algorithms for the block and restore the previous setting."""
    before = torch.are_deterministic_algorithms_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _check_inputs(
    model_input: ModelInput,
    manifest: FeatureManifest,
    model_params: ModelParams,
    loss_params: LossParams,
    training_params: TrainingParams,
) -> None:
    if model_input.manifest_hash != manifest.hash or tuple(manifest.names) != tuple(model_input.feature_names):
        only_input = [n for n in model_input.feature_names if n not in set(manifest.names)]
        only_manifest = [n for n in manifest.names if n not in set(model_input.feature_names)]
        raise ManifestMismatchError(
            f"model_input follows manifest {model_input.manifest_hash[:12]}, feature_manifest is {manifest.hash[:12]}: "
            f"{len(only_input)} features only in model_input {only_input[:20]}, "
            f"{len(only_manifest)} only in the manifest {only_manifest[:20]}"
        )
    horizons = [int(h) for h in model_input.horizons]
    if set(loss_params.horizon_weights) != set(horizons):
        raise ValueError(
            f"loss.horizon_weights has horizons {sorted(loss_params.horizon_weights)}, "
            f"the model input has {horizons}"
        )
    if training_params.primary_horizon not in horizons:
        raise ValueError(f"training.primary_horizon {training_params.primary_horizon} is not one of {horizons}")
    for phase in training_params.phases:
        if phase.fan and not model_params.fan.enabled:
            raise ValueError(f"training phase '{phase.name}' turns FAN on but model.fan.enabled is false")
        if phase.gat and not model_params.gat.enabled:
            raise ValueError(f"training phase '{phase.name}' turns GAT on but model.gat.enabled is false")
    if loss_params.sharpe_weight > 0 and training_params.days_per_batch < 2:
        raise ValueError(
            "loss.sharpe_weight > 0 needs training.days_per_batch >= 2 (the Sharpe term is across the batch's days)"
        )


def usable_days(model_input: ModelInput, dates: DateRange, split: str, required_horizon: int | None) -> np.ndarray:
    """Day indices in ``dates`` with at least 2 real stocks with a known target.

    Args:
        required_horizon: the horizon (days) that must have targets; None = any horizon.
    """
    days = model_input.day_indices(dates.start, dates.end)
    valid = model_input.mask[days][..., None] & np.isfinite(model_input.targets[days])  # [d, N, H]
    enough = valid.sum(1) >= 2  # [d, H]
    if required_horizon is None:
        days = days[enough.any(1)]
    else:
        days = days[enough[:, list(model_input.horizons).index(required_horizon)]]
    if len(days) == 0:
        raise ValueError(
            f"split '{split}' ({dates.start} .. {dates.end}) has no trading day with 2 stocks that have "
            + ("targets" if required_horizon is None else f"a {required_horizon}-day target")
        )
    return days


@dataclass
class LrSchedule:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine to 0 at ``total`` steps."""

    base: float
    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.base * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.base * 0.5 * (1.0 + math.cos(math.pi * progress))


class _Accumulator:
    """Sums per-day metrics on the device; read once per epoch (no per-step host sync)."""

    def __init__(self, n_horizons: int, device: torch.device) -> None:
        z = lambda: torch.zeros(n_horizons, dtype=torch.float64, device=device)  # noqa: E731
        self.ic, self.rankic, self.spread, self.days = z(), z(), z(), z()
        self.terms = {k: torch.zeros((), dtype=torch.float64, device=device) for k in (*LOSS_TERMS, "total")}
        self.counted = torch.zeros((), dtype=torch.float64, device=device)
        self.skipped = torch.zeros((), dtype=torch.int64, device=device)
        self.batches = 0

    def add(
        self, pred: torch.Tensor, batch: DayBatch, total: torch.Tensor, terms: dict, finite: torch.Tensor | None = None
    ) -> None:
        """pred: [B, N, H] point forecasts of the batch; finite: 0-dim bool, False = a skipped step.

        A skipped step adds nothing but its count (its loss or forecasts may be non-finite).
        """
        ok_step = torch.ones((), dtype=torch.bool, device=pred.device) if finite is None else finite
        pred = pred.detach().float()
        valid = valid_mask(batch.targets, batch.day_mask)
        ok = (day_has_pairs(valid) & ok_step).double()  # [B, H]

        def masked_sum(values: torch.Tensor) -> torch.Tensor:
            return torch.where(ok > 0, values.double(), torch.zeros_like(ok)).sum(0)

        self.ic += masked_sum(masked_pearson(pred, batch.targets, valid))
        self.rankic += masked_sum(rank_ic(pred, batch.targets, valid, batch.target_ranks))
        real = batch.day_mask.unsqueeze(-1).expand_as(pred)
        _, std = masked_moments(pred, real.to(pred.dtype), 1)
        self.spread += masked_sum(std.squeeze(1))
        self.days += ok.sum(0)
        zero = torch.zeros((), dtype=torch.float64, device=pred.device)
        self.terms["total"] += torch.where(ok_step, total.detach().double(), zero)
        for k in LOSS_TERMS:
            self.terms[k] += torch.where(ok_step, terms[k].detach().double(), zero)
        self.counted += ok_step.double()
        self.skipped += (~ok_step).long()
        self.batches += 1

    def result(self) -> dict[str, np.ndarray | float]:
        days = self.days.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN for a horizon without any day
            out: dict[str, np.ndarray | float] = {
                "ic_by_h": np.where(days > 0, self.ic.cpu().numpy() / days, np.nan),
                "rankic_by_h": np.where(days > 0, self.rankic.cpu().numpy() / days, np.nan),
                "spread_by_h": np.where(days > 0, self.spread.cpu().numpy() / days, np.nan),
            }
        counted = max(float(self.counted.cpu()), 1.0)
        for k, v in self.terms.items():
            out[k] = float(v.cpu()) / counted
        out["skipped_steps"] = int(self.skipped.cpu())
        out["steps"] = self.batches
        return out


@dataclass
class _Run:
    """Everything one training run shares between epochs."""

    model: ATFTGATFAN
    forward_model: Any  # the model, or its torch.compile wrapper (same parameters)
    tensors: DeviceTensors
    graph: GraphTensors
    levels: torch.Tensor
    horizon_weights: torch.Tensor
    loss_params: LossParams
    params: TrainingParams
    window: int


def forward_model(model: ATFTGATFAN, params: TrainingParams) -> Any:
    """The callable the trainer runs: ``torch.compile(model, dynamic=True)`` when ``training.compile``
    (shapes vary with the batch's days and edges), else the model itself. Both share the parameters."""
    return torch.compile(model, dynamic=True) if params.compile else model


def _autocast(run: _Run) -> contextlib.AbstractContextManager:
    """bf16 autocast on the run's device (CUDA, or CPU, whose autocast supports bf16) or nothing."""
    if run.params.precision == "bf16":
        return torch.autocast(device_type=run.tensors.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _forward(run: _Run, batch: DayBatch) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """-> quantiles [B, N, H, Q], total loss, terms."""
    with _autocast(run):
        quantiles = run.forward_model(batch.x, batch.stock_mask, batch.edge_index, batch.edge_attr, batch.time_mask)
    quantiles = quantiles.float().reshape(batch.n_days, run.tensors.n_stocks, *quantiles.shape[1:])
    total, terms = combined_loss(
        quantiles,
        batch.targets,
        batch.day_mask,
        run.levels,
        run.model.params.median_index,
        run.horizon_weights,
        run.loss_params,
        target_ranks=batch.target_ranks,
    )
    return quantiles, total, terms


def _batches(days: np.ndarray, days_per_batch: int) -> list[np.ndarray]:
    """Split days into ceil(n / days_per_batch) nearly equal batches (no batch of 1 left over)."""
    return np.array_split(days, max(1, math.ceil(len(days) / days_per_batch)))


def make_optimizer(model: ATFTGATFAN, params: TrainingParams) -> torch.optim.Optimizer:
    """Fused AdamW (it can skip a step on the device, see ``_train_epoch``) in two groups.

    Group 0: every weight but the fusion gate, ``weight_decay``; group 1: the fusion gate's
    logits, no weight decay, learning rate x ``gate_lr_scale`` (``lr_scale`` in the group).
    """
    gate = [] if model.fusion is None else [model.fusion.gate_logit]
    gate_ids = {id(p) for p in gate}
    rest = [p for p in model.parameters() if id(p) not in gate_ids]
    groups = [{"params": rest, "weight_decay": params.weight_decay, "lr_scale": 1.0}]
    if gate:
        groups.append({"params": gate, "weight_decay": 0.0, "lr_scale": params.gate_lr_scale})
    return torch.optim.AdamW(groups, lr=params.lr, fused=True)


def _train_epoch(
    run: _Run, optimizer: torch.optim.Optimizer, days: np.ndarray, schedule: LrSchedule, step: int, lr_scale: float
) -> tuple[dict, int, float, float]:
    """One pass over ``days`` (already shuffled). Returns metrics, next step, last lr, mean GAT grad norm.

    A step with a non-finite gradient norm is skipped by the optimiser itself (``found_inf``)
    and counted, without reading anything back to the host.
    """
    run.model.train()
    acc = _Accumulator(run.model.n_horizons, run.tensors.device)
    gat_params = run.model.gat_parameters() if run.model.use_gat else []
    gat_norm = torch.zeros((), dtype=torch.float64, device=run.tensors.device)
    lr = 0.0
    median = run.model.params.median_index
    for chunk in _batches(days, run.params.days_per_batch):
        lr = schedule(step) * lr_scale
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        batch = day_batch(run.tensors, chunk, run.window, run.graph)
        quantiles, total, terms = _forward(run, batch)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if gat_params:
            grads = [p.grad.detach().float().norm() for p in gat_params if p.grad is not None]
            gat_step_norm = torch.stack(grads).norm().double() if grads else None
        norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.params.grad_clip)
        finite = torch.isfinite(norm)
        optimizer.found_inf = (~finite).float()  # fused AdamW: skip the whole update when set
        optimizer.step()
        if gat_params and gat_step_norm is not None:
            gat_norm += torch.where(finite, gat_step_norm, torch.zeros_like(gat_step_norm))
        acc.add(quantiles[..., median], batch, total, terms, finite)
        step += 1
    optimizer.found_inf = None
    result = acc.result()
    counted = result["steps"] - result["skipped_steps"]
    mean_gat_norm = float(gat_norm.cpu()) / max(counted, 1) if gat_params else float("nan")
    return result, step, lr, mean_gat_norm


@torch.no_grad()
def _evaluate(run: _Run, days: np.ndarray) -> dict:
    """Eval-mode pass over ``days`` in date order: IC, RankIC, spread per horizon and the loss."""
    run.model.eval()
    acc = _Accumulator(run.model.n_horizons, run.tensors.device)
    median = run.model.params.median_index
    for chunk in _batches(days, run.params.days_per_batch):
        batch = day_batch(run.tensors, chunk, run.window, run.graph)
        quantiles, total, terms = _forward(run, batch)
        acc.add(quantiles[..., median], batch, total, terms)
    return acc.result()


def _check_skipped(train: dict, phase: PhaseParams, epoch: int, params: TrainingParams) -> None:
    """Log skipped steps; raise when the epoch skipped more than ``max_skipped_step_share``."""
    skipped, steps = train["skipped_steps"], train["steps"]
    if not skipped:
        return
    message = (
        f"epoch {epoch} (phase '{phase.name}'): {skipped} of {steps} optimiser steps had non-finite gradients "
        f"and were skipped"
    )
    if skipped > params.max_skipped_step_share * steps:
        raise NonFiniteGradientError(
            f"{message}, more than training.max_skipped_step_share={params.max_skipped_step_share}; "
            "nothing is saved (see docs/troubleshooting.md)"
        )
    logger.warning(message)


def _log_resolved(model_params, loss_params, training_params, model: ATFTGATFAN, n_train: int, n_val: int) -> None:
    resolved = {
        "model": model_params.model_dump(mode="json"),
        "loss": loss_params.model_dump(mode="json"),
        "training": training_params.model_dump(mode="json"),
    }
    logger.info("training with resolved parameters: %s", json.dumps(resolved, sort_keys=True))
    logger.info(
        "model ATFTGATFAN: %d parameters; %d training days, %d validation days",
        sum(p.numel() for p in model.parameters()),
        n_train,
        n_val,
    )


def _history_row(
    phase: PhaseParams,
    epoch: int,
    phase_epoch: int,
    horizons: list[int],
    primary: int,
    train: dict,
    val: dict,
    lr: float,
    gate: float,
    gat_norm: float,
    seconds: float,
) -> dict:
    row: dict = {
        "phase": phase.name,
        "epoch": epoch,
        "phase_epoch": phase_epoch,
        "fan": phase.fan,
        "gat": phase.gat,
        "loss_total": train["total"],
        **{f"loss_{k}": train[k] for k in LOSS_TERMS},
        "val_loss_total": val["total"],
    }
    for i, h in enumerate(horizons):
        row[f"train_ic_h{h}"] = float(train["ic_by_h"][i])
        row[f"train_rankic_h{h}"] = float(train["rankic_by_h"][i])
        row[f"val_ic_h{h}"] = float(val["ic_by_h"][i])
        row[f"val_rankic_h{h}"] = float(val["rankic_by_h"][i])
    for i, h in enumerate(horizons):
        row[f"pred_spread_h{h}"] = float(val["spread_by_h"][i])
    row["pred_spread"] = float(val["spread_by_h"][horizons.index(primary)])
    row.update(
        {
            "lr": lr,
            "gat_gate": gate,
            "gat_grad_norm": gat_norm,
            "skipped_steps": int(train["skipped_steps"]),
            "steps": int(train["steps"]),
            "seconds": seconds,
        }
    )
    return row


def _check_collapse(history: list[dict], params: TrainingParams) -> None:
    """Warn or raise when the last ``patience_epochs`` epochs all had a spread below ``min_spread``."""
    c = params.collapse
    recent = [r["pred_spread"] for r in history[-c.patience_epochs :]]
    if len(recent) < c.patience_epochs or not all(s < c.min_spread for s in recent):
        return
    message = (
        f"PREDICTION COLLAPSE: validation forecast spread (std across stocks, horizon {params.primary_horizon}) "
        f"has been below training.collapse.min_spread={c.min_spread} for {c.patience_epochs} epochs: {recent}"
    )
    if c.action == "error":
        raise PredictionCollapseError(message)
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=2)


def train_model(
    model_input: ModelInput,
    splits: Splits,
    stock_graph: GraphTensors | Any,
    manifest: FeatureManifest,
    model_params: ModelParams,
    loss_params: LossParams,
    training_params: TrainingParams,
    *,
    normalizer_identity: str,
) -> tuple[dict, Any]:
    """Train ATFT-GAT-FAN on the train split, early-stopped on the validation split.

    Args:
        model_input: the dense normalised input (features [D, N, F], mask, targets [D, N, H]).
        splits: date ranges; ``train`` is fitted, ``validation`` drives early stopping (test unused).
        stock_graph: the packed graphs (``GraphTensors`` from ``atft_kedro.graph_packing.pack_graph``
            for ``model_input``'s dates and codes), or the Polars ``stock_graph`` table itself,
            which is then packed through ``atft_kedro.graph_packing`` (imported only then).
        manifest: the feature manifest ``model_input`` follows (stored in the checkpoint).
        model_params, loss_params, training_params: from conf.
        normalizer_identity: identity string of the normalizer state, stored in the checkpoint.

    Returns:
        the checkpoint dict (best epoch, see ``checkpoint.py``) and the history, one row per
        epoch: ``phase``, ``epoch`` (1-based over all phases), ``phase_epoch``, ``fan``/``gat``
        (switches of the phase), ``loss_total`` and ``loss_{pinball,rank,ic,sharpe}`` (epoch
        means over the training batches; the terms unweighted by the term weights, weighted by
        the horizon weights), ``val_loss_total``, ``train_ic_h{h}``, ``train_rankic_h{h}``,
        ``val_ic_h{h}``, ``val_rankic_h{h}`` (means of per-day values; NaN for a horizon
        without any day), ``pred_spread_h{h}`` and ``pred_spread`` (primary horizon): the
        validation forecasts' std across stocks, mean over days, ``lr`` (at the epoch's last
        step), ``gat_gate`` (mean fusion gate at the epoch's end; NaN without GAT branch),
        ``gat_grad_norm`` (mean over steps of the GAT layers' gradient L2 norm before clipping;
        NaN when GAT is off), ``skipped_steps`` and ``steps`` (optimiser steps skipped for
        non-finite gradients, and all steps, of the epoch), ``seconds`` (training + validation
        pass), ``is_best``. The history is a Polars DataFrame (Polars imported at the end).

    Raises:
        CudaUnavailableError: ``device: cuda`` without CUDA.
        ManifestMismatchError: model input and manifest differ.
        PredictionCollapseError: collapse with ``collapse.action: error``.
        NonFiniteGradientError: an epoch skipped more than ``max_skipped_step_share`` of its steps.
    """
    _check_inputs(model_input, manifest, model_params, loss_params, training_params)
    device = resolve_device(training_params)
    horizons = [int(h) for h in model_input.horizons]
    train_days = usable_days(model_input, splits.train, "train", None)
    val_days = usable_days(model_input, splits.validation, "validation", training_params.primary_horizon)
    primary_col = f"val_rankic_h{training_params.primary_horizon}"
    with _deterministic(device.type == "cpu"):
        torch.manual_seed(training_params.seed)
        rng = np.random.default_rng(training_params.seed)
        model = ATFTGATFAN(model_params, model_input.n_features, len(horizons)).to(device)
        run = _Run(
            model=model,
            forward_model=forward_model(model, training_params),
            tensors=device_tensors(model_input, device),
            graph=as_graph_tensors(stock_graph, model_input).to(device),
            levels=torch.tensor(model_params.quantiles, dtype=torch.float32, device=device),
            horizon_weights=torch.tensor(
                [loss_params.horizon_weights[h] for h in horizons], dtype=torch.float32, device=device
            ),
            loss_params=loss_params,
            params=training_params,
            window=model_params.window_days,
        )
        _log_resolved(model_params, loss_params, training_params, run.model, len(train_days), len(val_days))
        optimizer = make_optimizer(run.model, training_params)
        epoch_days = len(train_days)
        if training_params.max_train_days_per_epoch is not None:
            epoch_days = min(epoch_days, training_params.max_train_days_per_epoch)
        steps_per_epoch = len(_batches(train_days[:epoch_days], training_params.days_per_batch))
        total_epochs = sum(p.epochs for p in training_params.phases)
        schedule = LrSchedule(training_params.lr, training_params.warmup_steps, total_epochs * steps_per_epoch)

        history: list[dict] = []
        best_score, best_state, best_row = -math.inf, None, None
        step, epoch = 0, 0
        for phase in training_params.phases:
            if best_state is not None:
                run.model.load_state_dict(best_state)
            run.model.set_components(fan=phase.fan, gat=phase.gat)
            since_best = 0
            for phase_epoch in range(1, phase.epochs + 1):
                epoch += 1
                started = time.perf_counter()
                train, step, lr, gat_norm = _train_epoch(
                    run, optimizer, rng.permutation(train_days)[:epoch_days], schedule, step, phase.lr_scale
                )
                _check_skipped(train, phase, epoch, training_params)
                val = _evaluate(run, val_days)
                row = _history_row(
                    phase, epoch, phase_epoch, horizons, training_params.primary_horizon, train, val, lr,
                    run.model.gate_value(), gat_norm, time.perf_counter() - started,
                )
                score = row[primary_col]
                improved = math.isfinite(score) and score > best_score
                row["is_best"] = improved
                history.append(row)
                logger.info(
                    "phase %s epoch %d (%d/%d): loss %.5f (pinball %.5f rank %.4f ic %.4f sharpe %.4f) | "
                    "val loss %.5f RankIC h%d %.4f IC %.4f spread %.3g | lr %.2e gate %.3f gat_grad %.2e | %.1fs",
                    phase.name, epoch, phase_epoch, phase.epochs, row["loss_total"], row["loss_pinball"],
                    row["loss_rank"], row["loss_ic"], row["loss_sharpe"], row["val_loss_total"],
                    training_params.primary_horizon, score, row[f"val_ic_h{training_params.primary_horizon}"],
                    row["pred_spread"], lr, row["gat_gate"], gat_norm, row["seconds"],
                )
                _check_collapse(history, training_params)
                if improved:
                    best_score, best_row, since_best = score, row, 0
                    best_state = copy.deepcopy(run.model.state_dict())
                    best_components = {"fan": phase.fan, "gat": phase.gat}
                else:
                    since_best += 1
                    if since_best >= training_params.patience:
                        logger.info(
                            "phase %s stops early: no better validation RankIC for %d epochs (best %.4f)",
                            phase.name, since_best, best_score,
                        )
                        break
        if best_state is None:
            raise RuntimeError(f"training produced no finite validation RankIC (column {primary_col}); see the history")
        run.model.load_state_dict(best_state)
        run.model.set_components(**best_components)
        summary = {
            "best_epoch": int(best_row["epoch"]),
            "best_phase": str(best_row["phase"]),
            "best_val_rankic_primary": float(best_score),
            "primary_horizon": int(training_params.primary_horizon),
            "epochs_run": int(epoch),
            "n_parameters": int(sum(p.numel() for p in run.model.parameters())),
            **{k: float(v) for k, v in best_row.items() if k.startswith(("val_ic_h", "val_rankic_h", "pred_spread"))},
        }
        logger.info("training done: %s", json.dumps(summary, sort_keys=True))
        checkpoint = make_checkpoint(
            run.model, manifest, model_params, loss_params, training_params, horizons, normalizer_identity, summary
        )
    return checkpoint, history_table(history)


def history_table(history: list[dict]) -> Any:
    """The history rows as a Polars DataFrame.

    Polars is imported here, once a run is over, so that ``atft_kedro.model`` imports and
    trains without it (``benchmarks/gpu_check.py`` on a bare CUDA machine).
    """
    import polars as pl

    return pl.DataFrame(history, infer_schema_length=None)
