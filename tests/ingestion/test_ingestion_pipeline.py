"""The ingestion pipeline end to end: synthetic source, J-Quants source on the fake server, failures."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from kedro_project import project_catalog, run
from fake_jquants import FakeJQuants

from atft_kedro.pipelines.ingestion import create_pipeline
from atft_kedro.schemas import tables
from atft_kedro.sources.jquants import JQuantsFetchError, JQuantsSourceParams

CANONICAL = [t.canonical_name for t in tables.TABLES]


def _canonical_schemas(root: Path) -> dict[str, pl.Schema]:
    return {name: pl.read_parquet_schema(root / "data/02_intermediate" / f"{name}.parquet") for name in CANONICAL}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    pipeline = create_pipeline()
    run(pipeline, project_catalog("test", root, pipeline=pipeline))
    return root


def test_synthetic_ingestion_writes_every_canonical_table(synthetic_run: Path) -> None:
    for spec in tables.TABLES:
        frame = pl.read_parquet(synthetic_run / "data/02_intermediate" / f"{spec.canonical_name}.parquet")
        spec.canonical_schema().validate(frame)
        raw = pl.read_parquet(synthetic_run / "data/01_raw" / f"{spec.raw_name}.parquet")
        assert frame.height == raw.height > 0, f"{spec.canonical_name} lost rows or is empty"
    oracle = pl.read_parquet(synthetic_run / "data/01_raw/oracle_expected_returns.parquet")
    assert [c for c in oracle.columns if c.startswith("exp_ret_")] == [f"exp_ret_{h}d" for h in (1, 5, 10, 20)]


def _jquants_override(server: FakeJQuants, params: JQuantsSourceParams) -> dict:
    from kedro_project import load_conf

    ingestion = dict(load_conf("test")["parameters"]["ingestion"])
    ingestion["source"] = "jquants"
    ingestion["jquants"] = params.model_dump(mode="json")
    return {"ingestion": ingestion}


def test_jquants_source_yields_canonical_tables_identical_in_schema(
    synthetic_run: Path, fake_jquants: FakeJQuants, jquants_params: JQuantsSourceParams, tmp_path: Path
) -> None:
    fake_jquants.fail_once("/equities/bars/daily", status=429)
    pipeline = create_pipeline()
    catalog = project_catalog("test", tmp_path, _jquants_override(fake_jquants, jquants_params), pipeline)
    catalog["jquants_credentials"] = _credentials()
    run(pipeline, catalog)
    assert _canonical_schemas(tmp_path) == _canonical_schemas(synthetic_run)
    bars = pl.read_parquet(tmp_path / "data/02_intermediate/daily_quotes.parquet")
    assert bars.height > 0 and bars["Code"].dtype == pl.String
    assert pl.read_parquet(tmp_path / "data/01_raw/oracle_expected_returns.parquet").height == 0


def test_persistent_500_stops_the_run_and_leaves_no_table(
    fake_jquants: FakeJQuants, jquants_params: JQuantsSourceParams, tmp_path: Path
) -> None:
    fake_jquants.fail_always("/markets/short-ratio", status=500)
    pipeline = create_pipeline()
    catalog = project_catalog("test", tmp_path, _jquants_override(fake_jquants, jquants_params), pipeline)
    catalog["jquants_credentials"] = _credentials()
    with pytest.raises(JQuantsFetchError, match="/markets/short-ratio"):
        run(pipeline, catalog)
    written = [p for p in (tmp_path / "data").rglob("*") if p.is_file()] if (tmp_path / "data").exists() else []
    assert written == [], f"a failed fetch must leave no table behind, found {written}"


def test_misspelt_parameter_key_is_an_error(tmp_path: Path) -> None:
    from kedro_project import load_conf
    from kedro.validation.exceptions import ParameterValidationError

    ingestion = dict(load_conf("test")["parameters"]["ingestion"])
    ingestion["sorce"] = ingestion.pop("source")
    pipeline = create_pipeline()
    with pytest.raises(ParameterValidationError, match="sorce"):
        project_catalog("test", tmp_path, {"ingestion": ingestion}, pipeline)


def _credentials():
    from fake_jquants import FAKE_API_KEY

    from atft_kedro.sources.jquants import JQuantsCredentials

    return JQuantsCredentials(api_key=FAKE_API_KEY)


def test_jquants_environment_runs_against_the_fake_server(
    fake_jquants: FakeJQuants, jquants_params: JQuantsSourceParams, tmp_path: Path
) -> None:
    """``--env jquants`` as shipped (source jquants), pointed at the local fake v2 server."""
    from kedro_project import load_conf

    ingestion = dict(load_conf("jquants")["parameters"]["ingestion"])
    assert ingestion["source"] == "jquants"
    ingestion["jquants"] = ingestion["jquants"] | {
        key: value for key, value in jquants_params.model_dump(mode="json").items()
        if key in ("base_url", "start_date", "end_date", "backoff_seconds", "min_seconds_between_requests")
    }
    pipeline = create_pipeline()
    catalog = project_catalog("jquants", tmp_path, {"ingestion": ingestion}, pipeline)
    catalog["jquants_credentials"] = _credentials()
    run(pipeline, catalog)
    quotes = pl.read_parquet(tmp_path / "data/02_intermediate/daily_quotes.parquet")
    tables.DAILY_BARS.canonical_schema().validate(quotes)
    assert quotes.height > 0
