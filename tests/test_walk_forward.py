"""``kedro run --env test --pipelines walk_forward``: folds, their own normalizers, the stitched record."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.normalization.robust import fit_robust_state
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import Splits

pytestmark = pytest.mark.slow
MODELS = {"atft_gat_fan", "lightgbm", "hist_gbm", "ridge", "momentum_20d", "oracle"}


def _splits(run) -> Splits:
    return Splits.model_validate(json.loads((run.data / "05_model_input/splits.json").read_text()))


def test_at_least_three_folds_whose_stitched_dates_are_their_test_blocks(walk_forward_run) -> None:
    splits = _splits(walk_forward_run)
    assert len(splits.folds) >= 3
    stitched = pl.read_parquet(walk_forward_run.data / "07_model_output/walk_forward/predictions.parquet")
    assert set(stitched["model"]) == MODELS
    feature_dates = pl.read_parquet(walk_forward_run.data / "04_feature/features.parquet", columns=["Date"])["Date"]
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


def test_each_fold_normalizer_is_fitted_on_its_own_training_dates(walk_forward_run) -> None:
    from kedro_project import load_conf

    data = walk_forward_run.data
    features = pl.read_parquet(data / "04_feature/features.parquet")
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
