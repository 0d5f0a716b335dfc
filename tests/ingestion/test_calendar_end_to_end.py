"""A J-Quants calendar with holiday divisions 2 and 3 runs from ingestion to evaluation.

The test environment's simulated market is written as a ``files`` folder twice: once with
its own calendar (divisions 0 and 1 only) and once with the same trading days coded as the
real ``/markets/calendar`` codes them: the first session of each year as a half-day '2', and
every weekday holiday from 2022-09-23 (when JPX started holiday trading of derivatives) as '3'.
Both calendars describe the same trading days, so every feature, target, split and model
input must be identical; the '2'/'3' run then also trains and evaluates.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from kedro_project import load_conf, project_catalog, read_features, run
from polars.testing import assert_frame_equal

from atft_kedro.datasets import ModelInputDataset
from atft_kedro.pipelines import evaluation, feature_engineering, ingestion, normalization, training
from atft_kedro.schemas import tables

pytestmark = pytest.mark.slow

HOLIDAY_TRADING_FROM = dt.date(2022, 9, 23)


def jquants_style_calendar(calendar: pl.DataFrame) -> pl.DataFrame:
    """The same trading days with '2' on each year's first session and '3' on weekday holidays from 2022-09-23."""
    trading = pl.col("HolDiv") == "1"
    first_session = trading & (pl.col("Date") == pl.col("Date").filter(trading).min().over(pl.col("Date").dt.year()))
    derivatives_holiday = (
        (pl.col("HolDiv") == "0") & (pl.col("Date").dt.weekday() <= 5) & (pl.col("Date") >= HOLIDAY_TRADING_FROM)
    )
    return calendar.with_columns(
        pl.when(first_session).then(pl.lit("2"))
        .when(derivatives_holiday).then(pl.lit("3"))
        .otherwise(pl.col("HolDiv")).alias("HolDiv")
    )


def _files_params(folder: Path) -> dict:
    params = dict(load_conf("test")["parameters"]["ingestion"])
    params["source"] = "files"
    params["files"] = {"directory": str(folder), "format": "parquet"}
    return {"ingestion": params}


def _layer(root: Path, layer: str) -> Path:
    (path,) = root.rglob(layer)
    return path


@pytest.fixture(scope="module")
def simulated_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test environment's raw tables (synthetic source), as a files-source folder."""
    root = tmp_path_factory.mktemp("simulated")
    pipeline = ingestion.create_pipeline()
    run(pipeline, project_catalog("test", root, pipeline=pipeline))
    return _layer(root, "01_raw")


def _run_to_model_input(files: Path, root: Path, pipelines) -> None:
    pipeline = sum(pipelines, ingestion.create_pipeline())
    run(pipeline, project_catalog("test", root, _files_params(files), pipeline))


def test_a_calendar_with_divisions_2_and_3_gives_the_same_model_input_and_runs_to_evaluation(
    simulated_files: Path, tmp_path: Path
) -> None:
    calendar = pl.read_parquet(simulated_files / f"{tables.TRADING_CALENDAR.raw_name}.parquet")
    recoded = jquants_style_calendar(calendar)
    counts = dict(recoded.group_by("HolDiv").len().iter_rows())
    assert counts.get("2", 0) >= 2 and counts.get("3", 0) >= 3, counts

    jquants_files = tmp_path / "jquants_files"
    jquants_files.mkdir()
    for path in simulated_files.glob("raw_*.parquet"):
        (jquants_files / path.name).write_bytes(path.read_bytes())
    recoded.write_parquet(jquants_files / f"{tables.TRADING_CALENDAR.raw_name}.parquet")

    stages = (feature_engineering.create_pipeline(), normalization.create_pipeline())
    _run_to_model_input(simulated_files, tmp_path / "zero_one", stages)
    _run_to_model_input(jquants_files, tmp_path / "jquants", (*stages, training.create_pipeline(),
                                                              evaluation.create_pipeline()))

    plain, coded = tmp_path / "zero_one", tmp_path / "jquants"
    canonical = pl.read_parquet(_layer(coded, "02_intermediate") / "trading_calendar.parquet")
    assert set(canonical["HolidayDivision"].unique()) == {"0", "1", "2", "3"}
    assert_frame_equal(read_features(_layer(coded, "04_feature").parent),
                       read_features(_layer(plain, "04_feature").parent))
    assert_frame_equal(pl.read_parquet(_layer(coded, "04_feature") / "targets.parquet"),
                       pl.read_parquet(_layer(plain, "04_feature") / "targets.parquet"))
    assert (json.loads((_layer(coded, "05_model_input") / "splits.json").read_text())
            == json.loads((_layer(plain, "05_model_input") / "splits.json").read_text()))
    a = ModelInputDataset(filepath=str(_layer(plain, "05_model_input") / "model_input")).load()
    b = ModelInputDataset(filepath=str(_layer(coded, "05_model_input") / "model_input")).load()
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.features, b.features)
    # the first sessions of the years coded '2' are trading days of the model input
    half_days = recoded.filter(pl.col("HolDiv") == "2")["Date"].to_numpy().astype("datetime64[D]")
    in_range = half_days[(half_days >= b.dates[0]) & (half_days <= b.dates[-1])]
    assert in_range.size and np.isin(in_range, b.dates).all()

    metrics = json.loads((_layer(coded, "08_reporting") / "evaluation_metrics.json").read_text())
    assert metrics["by_horizon"], "evaluation produced no metrics"
