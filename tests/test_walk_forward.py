"""``kedro run --env test --pipelines walk_forward``: folds, their own normalizers, the stitched record."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from kedro_project import read_features

from atft_kedro.evaluation.walk_forward import FoldBlock, rank_average, seed_spread
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.normalization.robust import fit_robust_state
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import Splits

MODELS = {"atft_gat_fan", "lightgbm", "hist_gbm", "ridge", "momentum_20d", "oracle"}


def _splits(run) -> Splits:
    return Splits.model_validate(json.loads((run.data / "05_model_input/splits.json").read_text()))


@pytest.mark.slow
def test_at_least_three_folds_whose_stitched_dates_are_their_test_blocks(walk_forward_run) -> None:
    splits = _splits(walk_forward_run)
    assert len(splits.folds) >= 3
    stitched = pl.read_parquet(walk_forward_run.data / "07_model_output/walk_forward/predictions.parquet")
    assert set(stitched["model"]) == MODELS
    feature_dates = read_features(walk_forward_run.data, ["Date"])["Date"]
    expected: list = []
    for k, fold in enumerate(splits.folds):
        own = pl.read_parquet(walk_forward_run.data / f"07_model_output/walk_forward/fold_{k}/predictions.parquet")
        block = feature_dates.filter(feature_dates.is_between(fold.test.start, fold.test.end)).unique().sort()
        assert own["Date"].unique().sort().to_list() == block.to_list()  # every day of the block, nothing else
        assert stitched.filter(pl.col("fold") == k)["Date"].unique().sort().to_list() == block.to_list()
        expected += block.to_list()
    assert len(expected) == len(set(expected))  # no date forecast twice
    assert stitched["Date"].unique().sort().to_list() == sorted(expected)
    assert max(expected) == feature_dates.max()


@pytest.mark.slow
def test_each_fold_normalizer_is_fitted_on_its_own_training_dates(walk_forward_run) -> None:
    from kedro_project import load_conf

    data = walk_forward_run.data
    features = read_features(data)
    manifest = FeatureManifest.from_json_dict(json.loads((data / "04_feature/feature_manifest.json").read_text()))
    params = NormalizationParams.model_validate(load_conf("test")["parameters"]["normalization"])
    centres = []
    for k, fold in enumerate(_splits(walk_forward_run).folds):
        stored = json.loads((data / f"05_model_input/walk_forward/fold_{k}/normalizer.json").read_text())
        alone = fit_robust_state(features.filter(pl.col("Date").is_between(fold.train.start, fold.train.end)),
                                 manifest, fold.train, params).to_json_dict()
        assert stored["center"] == alone["center"] and stored["scale"] == alone["scale"]
        assert stored["fitted_on"] == {"start": str(fold.train.start), "end": str(fold.train.end)}
        assert stored["n_train_rows"] == features.filter(pl.col("Date").is_between(fold.train.start,
                                                                                   fold.train.end)).height
        centres.append(np.asarray(stored["center"], dtype=float))
    assert not np.allclose(centres[0], centres[-1])  # the folds' statistics differ: the check can fail


@pytest.mark.slow
def test_report_opens_with_the_stitched_comparison_and_paired_tests(walk_forward_run) -> None:
    reporting = walk_forward_run.data / "08_reporting/walk_forward"
    lines = (reporting / "report.md").read_text().splitlines()
    assert lines[0] == "# Walk-forward report"
    assert lines[2].startswith("Label: target_ret_{h}d(t) = P(t+1+h) / P(t+1) - 1")
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    assert start < 12
    rows = [line.split("|")[1].strip() for line in lines[start + 2: start + 8]]
    assert rows[0] == "atft_gat_fan" and set(rows) == MODELS
    linked = [line.split("](")[1].rstrip(")") for line in lines if line.startswith("![")]
    assert linked and all((reporting / path).is_file() for path in linked)
    metrics = json.loads((reporting / "metrics.json").read_text())
    extras = metrics["walk_forward"]["by_horizon"]["5"]
    assert set(extras["paired_vs_reference"]) == MODELS - {"atft_gat_fan"}
    assert len({row["fold"] for row in extras["per_fold"]}) == len(metrics["walk_forward"]["folds"])
    interval = extras["rank_ic_interval"]["atft_gat_fan"]
    assert interval["ci_low"] < metrics["by_horizon"]["5"]["models"]["atft_gat_fan"]["rank_ic"]["mean"] < \
        interval["ci_high"]


@pytest.mark.slow
def test_the_report_shows_the_seed_spread_of_every_fold(walk_forward_run) -> None:
    reporting = walk_forward_run.data / "08_reporting/walk_forward"
    metrics = json.loads((reporting / "metrics.json").read_text())
    folds = len(metrics["walk_forward"]["folds"])
    spread = metrics["walk_forward"]["by_horizon"]["5"]["seed_spread"]
    assert [row["fold"] for row in spread] == list(range(folds))
    per_fold = {row["fold"]: row["rank_ic_mean"] for row in metrics["walk_forward"]["by_horizon"]["5"]["per_fold"]
                if row["model"] == "atft_gat_fan"}
    for row in spread:  # conf/base trains one seed: the fold's forecast is that seed's own
        assert row["n_seeds"] == 1 and row["std"] is None and row["ensemble"] == per_fold[row["fold"]]
    report = (reporting / "report.md").read_text()
    assert "## Seeds, 5-day horizon" in report
    for k in range(folds):
        seed_file = walk_forward_run.data / f"07_model_output/walk_forward/fold_{k}/seed_0/atft_predictions.parquet"
        own = pl.read_parquet(walk_forward_run.data / f"07_model_output/walk_forward/fold_{k}/predictions.parquet")
        assert own.filter(pl.col("model") == "atft_gat_fan").sort("Date", "Code").equals(
            pl.read_parquet(seed_file).sort("Date", "Code"))


def _seed_forecasts(values: list[float], day: dt.date = dt.date(2024, 1, 4)) -> pl.DataFrame:
    return pl.DataFrame({"Date": [day] * len(values), "Code": [f"{1300 + i}" for i in range(len(values))],
                         "model": ["atft_gat_fan"] * len(values), "pred_5d": values,
                         "q0.1_5d": [v - 1 for v in values]})


def test_rank_average_averages_each_seeds_centred_ranks() -> None:
    a = _seed_forecasts([0.10, 0.20, 0.30, 0.40])       # ranks 1 2 3 4
    b = _seed_forecasts([400.0, 300.0, 200.0, 100.0])   # ranks 4 3 2 1, a thousand times the scale
    c = _seed_forecasts([0.0, 1.0, 1.0, 2.0])           # ranks 1 2.5 2.5 4 (ties share their average)
    out = rank_average([a, b, c]).sort("Code")
    centred = {1: -0.375, 2: -0.125, 2.5: 0.0, 3: 0.125, 4: 0.375}  # (rank - 0.5) / 4 - 0.5
    expected = [(centred[1] + centred[4] + centred[1]) / 3, (centred[2] + centred[3] + centred[2.5]) / 3,
                (centred[3] + centred[2] + centred[2.5]) / 3, (centred[4] + centred[1] + centred[4]) / 3]
    assert out["pred_5d"].to_list() == pytest.approx(expected)
    assert out.columns == ["Date", "Code", "model", "pred_5d"]  # no quantiles for an average of ranks
    assert rank_average([a]).equals(a)  # one seed: its own forecasts, quantiles included


def test_rank_average_refuses_seeds_that_forecast_different_rows() -> None:
    a = _seed_forecasts([0.1, 0.2, 0.3])
    b = _seed_forecasts([0.1, 0.2, 0.3]).with_columns(pl.col("Code").replace("1302", "9999"))
    with pytest.raises(ValueError, match=r"seeds 0 and 1 forecast different \(Date, Code, model\) rows.*9999"):
        rank_average([a, b])


def test_seed_spread_per_fold_and_the_ensemble() -> None:
    blocks = [FoldBlock(0, dt.date(2024, 1, 1), dt.date(2024, 1, 31)), FoldBlock(1, dt.date(2024, 2, 1),
                                                                                  dt.date(2024, 2, 29))]
    scores = pl.DataFrame({
        "seed": [0, 0, 1, 1, 0, 1],
        "Date": [dt.date(2024, 1, 5), dt.date(2024, 1, 6), dt.date(2024, 1, 5), dt.date(2024, 1, 6),
                 dt.date(2024, 2, 5), dt.date(2024, 2, 5)],
        "rank_ic": [0.1, 0.3, -0.1, 0.1, 0.05, 0.07],
    })
    per_fold = [{"fold": 0, "model": "atft_gat_fan", "rank_ic_mean": 0.12},
                {"fold": 0, "model": "ridge", "rank_ic_mean": 0.5},
                {"fold": 1, "model": "atft_gat_fan", "rank_ic_mean": 0.06}]
    rows = seed_spread(scores, blocks, per_fold, "atft_gat_fan")
    assert [r["fold"] for r in rows] == [0, 1]
    assert rows[0]["rank_ic_by_seed"] == pytest.approx([0.2, 0.0])
    assert rows[0]["min"] == pytest.approx(0.0) and rows[0]["max"] == pytest.approx(0.2)
    assert rows[0]["std"] == pytest.approx(0.1414213562)
    assert rows[0]["ensemble"] == 0.12 and rows[1]["ensemble"] == 0.06


def test_seed_s_trains_with_training_seed_plus_s_and_the_fold_changes() -> None:
    from kedro_project import load_conf

    from atft_kedro.model.params import TrainingParams
    from atft_kedro.pipelines.walk_forward.params import WalkForwardParams

    params = load_conf("base")["parameters"]
    training = TrainingParams.model_validate(params["training"])
    walk_forward = WalkForwardParams.model_validate(params["walk_forward"])
    assert walk_forward.seeds == 1  # conf/base: one seed, the walk-forward as before seeds existed
    seeds = [walk_forward.seed_training(training, s) for s in range(3)]
    assert [t.seed for t in seeds] == [training.seed, training.seed + 1, training.seed + 2]
    assert all(t.max_epochs == walk_forward.training["max_epochs"] != training.max_epochs for t in seeds)


def test_another_seed_count_than_the_registered_one_is_refused() -> None:
    from atft_kedro.pipelines.walk_forward.nodes import stitch_seed_forecasts
    from atft_kedro.pipelines.walk_forward.params import WalkForwardParams

    walk_forward = WalkForwardParams(training={}, bootstrap={"block_days": 5, "samples": 100, "confidence": 0.9,
                                                             "seed": 1}, seeds=2)
    frames = [_seed_forecasts([0.1, 0.2, 0.3]) for _ in range(3)]
    with pytest.raises(ValueError, match="walk_forward.seeds is 2 but the walk_forward pipeline has 3 seed"):
        stitch_seed_forecasts(walk_forward, *frames)
    stitched = stitch_seed_forecasts(walk_forward, *frames, frames[0])
    assert stitched.select("fold", "seed").unique().sort("fold", "seed").rows() == [(0, 0), (0, 1), (1, 0), (1, 1)]
