"""The features table assembled block by block equals the one-block table, bit for bit.

The test environment's ingestion and feature pipelines run through the project's catalog
(group frames as Parquet files, ``features`` streamed to Parquet by blocks of whole trading
days, ``feature_engineering.assembly.block_mib`` from ``conf/test``, small enough for several
blocks). The same group files assembled in one block and collected in memory must give the
identical table.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from kedro_project import load_conf, project_catalog, run
from polars.testing import assert_frame_equal

from atft_kedro.datasets.lazy_parquet import LazyParquetDataset, LazySchemaValidator
from atft_kedro.features import assembly
from atft_kedro.features.base import DAY
from atft_kedro.features.manifest import DATA_GROUPS
from atft_kedro.features.params import FeatureParams
from atft_kedro.pipelines import feature_engineering, ingestion
from atft_kedro.pipelines.feature_engineering import nodes
from atft_kedro.schemas.manifest import FeatureManifest

pytest.importorskip("atft_kedro.market.simulator")


@pytest.fixture(scope="module")
def kedro_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test environment's ingestion + feature_engineering, run by Kedro into a temporary data root."""
    root = tmp_path_factory.mktemp("assembly")
    pipeline = ingestion.create_pipeline() + feature_engineering.create_pipeline()
    run(pipeline, project_catalog("test", root, pipeline=pipeline))
    return root / "data" / "04_feature"


@pytest.fixture(scope="module")
def params() -> FeatureParams:
    return FeatureParams(**load_conf("test")["parameters"]["feature_engineering"])


def json_manifest(folder: Path) -> dict:
    return json.loads((folder / "feature_manifest.json").read_text())


def _keys(features: pl.DataFrame) -> pl.DataFrame:
    """Date, Code and a trading-day index of the features' rows (in their (Date, Code) order)."""
    return features.select("Date", "Code", pl.col("Date").rank("dense").cast(pl.Int32).alias(DAY))


def test_block_wise_table_equals_the_one_block_table(kedro_run: Path, params: FeatureParams) -> None:
    written = pl.read_parquet(kedro_run / "features.parquet")
    manifest = FeatureManifest.from_json_dict(json_manifest(kedro_run))
    keys = _keys(written)
    # the conf's block size cuts this market into several blocks of whole days
    bounds = assembly.day_blocks(keys.get_column(DAY).to_numpy(),
                                 assembly.rows_per_block(len(manifest.names), params.assembly.block_mib))
    assert len(bounds) >= 4
    group_files = {g: kedro_run / "groups" / f"{g}.parquet" for g in DATA_GROUPS}
    assert all(path.exists() for path in group_files.values())
    frames = [pl.read_parquet(path) for path in group_files.values()]  # eager: the one-block build in memory
    one_block = params.model_copy(update={"assembly": params.assembly.model_copy(update={"block_mib": 10**6})})
    whole = nodes.assemble_features(keys, manifest, one_block, *frames).collect()
    assert whole.columns == ["Date", "Code", *manifest.names]
    assert_frame_equal(written, whole, check_exact=True)
    # the comparison sees real values: z-scores and interactions vary within and across days
    csz = [n for n in manifest.names if n.endswith("_csz")]
    assert csz and whole.select(pl.col(csz[0]).drop_nulls().n_unique()).item() > 1000
    assert whole.select(pl.col(csz[0]).null_count()).item() < whole.height // 2


def test_lazy_groups_in_blocks_equal_eager_groups_in_one_block(kedro_run: Path, params: FeatureParams) -> None:
    """The same from the group files scanned lazily (as Kedro hands them), and for a filtered, projected read."""
    written = pl.read_parquet(kedro_run / "features.parquet")
    manifest = FeatureManifest.from_json_dict(json_manifest(kedro_run))
    keys = _keys(written)
    lazy = [pl.scan_parquet(kedro_run / "groups" / f"{g}.parquet") for g in DATA_GROUPS]
    table = nodes.assemble_features(keys, manifest, params, *lazy)
    assert_frame_equal(table.collect(), written, check_exact=True)
    day = written.get_column("Date").unique().sort()[200]
    picked = table.filter(pl.col("Date") == day).select("Code", "px_ret_5d_csz").collect()
    assert_frame_equal(picked, written.filter(pl.col("Date") == day).select("Code", "px_ret_5d_csz"),
                       check_exact=True)


def test_day_blocks_never_split_a_day() -> None:
    day = pl.Series([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4]).to_numpy()
    bounds = assembly.day_blocks(day, rows_per_block=2)
    assert bounds == [(0, 3), (3, 5), (5, 10), (10, 11)]  # each block ends at the first day end past 2 rows
    assert assembly.day_blocks(day, rows_per_block=4) == [(0, 5), (5, 10), (10, 11)]
    assert assembly.day_blocks(day, rows_per_block=100) == [(0, 11)]
    with pytest.raises(ValueError, match="not in Date order"):
        assembly.day_blocks(day[::-1].copy(), rows_per_block=2)


def test_lazy_parquet_dataset_streams_a_lazyframe_and_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    dataset = LazyParquetDataset(filepath=str(tmp_path / "t.parquet"), save_args={"row_group_size": 3})
    frame = pl.DataFrame({"Date": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 10), eager=True),
                          "x": pl.Series(range(10), dtype=pl.Float32)})
    dataset.save(frame.lazy())
    loaded = dataset.load()
    assert isinstance(loaded, pl.LazyFrame)
    assert_frame_equal(loaded.collect(), frame)
    failing = frame.lazy().with_columns(pl.col("x").map_batches(lambda s: 1 / 0, return_dtype=pl.Float32))
    with pytest.raises(Exception, match="division by zero"):
        dataset.save(failing)
    assert_frame_equal(dataset.load().collect(), frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_schema_validator_refuses_duplicate_keys_without_collecting_the_features() -> None:
    validator = LazySchemaValidator(schema="atft_kedro.schemas.feature.FEATURES")
    good = pl.DataFrame({"Date": [dt.date(2024, 1, 4)] * 2, "Code": ["13010", "13050"],
                         "px_ret_1d": pl.Series([0.1, None], dtype=pl.Float32)})
    assert validator.validate(good.lazy()) is not None
    with pytest.raises(ValueError, match=r"share their \['Date', 'Code'\].*13010"):
        validator.validate(pl.concat([good, good.head(1)]).lazy())
    with pytest.raises(Exception, match="px_ret_1d"):
        validator.validate(good.with_columns(pl.col("px_ret_1d").cast(pl.Float64)).lazy())
