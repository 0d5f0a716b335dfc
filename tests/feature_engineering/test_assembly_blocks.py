"""The features table read block by block from its files equals the one-block table, bit for bit.

The test environment's ingestion and feature pipelines run through the project's catalog
(group frames as Parquet files, ``features`` a folder of the assembly's own columns that
refers to them, written and read by blocks of whole trading days,
``feature_engineering.assembly.block_mib`` from ``conf/test``, small enough for several
blocks). The same group files assembled in one block and collected in memory must give the
identical table. The dataset writes no second copy of the groups, refuses a group file
rewritten since, keeps the previous table when a save fails, and a Date filter reads only
the blocks it selects.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from kedro.io.core import DatasetError
from kedro_project import load_conf, project_catalog, read_features, run
from polars.testing import assert_frame_equal

from atft_kedro.datasets.feature_table import FeatureTableDataset
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
    written = read_features(kedro_run.parent)
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
    assert len(nodes.assemble_features(keys, manifest, one_block, *frames).bounds()) == 1
    assert whole.columns == ["Date", "Code", *manifest.names]
    assert_frame_equal(written, whole, check_exact=True)
    # the comparison sees real values: z-scores and interactions vary within and across days
    csz = [n for n in manifest.names if n.endswith("_csz")]
    assert csz and whole.select(pl.col(csz[0]).drop_nulls().n_unique()).item() > 1000
    assert whole.select(pl.col(csz[0]).null_count()).item() < whole.height // 2


def test_lazy_groups_in_blocks_equal_eager_groups_in_one_block(kedro_run: Path, params: FeatureParams) -> None:
    """The same from the group files scanned lazily (as Kedro hands them), and for a filtered, projected read."""
    written = read_features(kedro_run.parent)
    manifest = FeatureManifest.from_json_dict(json_manifest(kedro_run))
    keys = _keys(written)
    lazy = [pl.scan_parquet(kedro_run / "groups" / f"{g}.parquet") for g in DATA_GROUPS]
    table = nodes.assemble_features(keys, manifest, params, *lazy)
    assert_frame_equal(table.collect(), written, check_exact=True)
    day = written.get_column("Date").unique().sort()[200]
    picked = table.lazy().filter(pl.col("Date") == day).select("Code", "px_ret_5d_csz").collect()
    assert_frame_equal(picked, written.filter(pl.col("Date") == day).select("Code", "px_ret_5d_csz"),
                       check_exact=True)


def _dataset(folder: Path) -> FeatureTableDataset:
    """The features dataset of the run in ``folder`` (``04_feature``), as the catalog configures it."""
    return FeatureTableDataset(filepath=str(folder / "features"), group_filepath=str(folder / "groups" / "{group}.parquet"),
                               save_args={"compression": "lz4", "row_group_size": 4096})


def test_the_features_folder_holds_only_the_assemblys_own_columns(kedro_run: Path) -> None:
    """Each group's values are on disk once: in its group file, not copied into the features folder."""
    manifest = FeatureManifest.from_json_dict(json_manifest(kedro_run))
    own = pl.read_parquet_schema(kedro_run / "features" / "assembled.parquet")
    derived = [n for n in manifest.names if n.startswith("int_") or n.endswith("_csz")]
    assert derived and list(own) == ["Date", "Code", *derived]
    index = json.loads((kedro_run / "features" / "table.json").read_text())
    grouped = [c for entry in index["groups"] for c in entry["columns"]]
    assert sorted(grouped + derived) == sorted(manifest.names)
    assert {entry["file"] for entry in index["groups"]} == {f"../groups/{g['group']}.parquet" for g in index["groups"]}


def test_a_group_file_rewritten_after_the_assembly_is_refused(kedro_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "04_feature"
    shutil.copytree(kedro_run, folder)
    dataset = _dataset(folder)
    assert dataset.load().select(pl.len()).collect().item() > 0
    px = pl.read_parquet(folder / "groups" / "px.parquet")
    px.with_columns(pl.col("px_ret_1d") * 2).write_parquet(folder / "groups" / "px.parquet", compression="zstd")
    with pytest.raises(DatasetError, match=r"groups/px.parquet changed after the table was assembled.*"
                                           r"kedro run --pipelines feature_engineering"):
        dataset.load()
    (folder / "groups" / "px.parquet").unlink()
    with pytest.raises(DatasetError, match=r"px.parquet is missing"):
        dataset.load()


def test_a_failed_save_leaves_the_previous_table(kedro_run: Path, params: FeatureParams, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "04_feature"
    shutil.copytree(kedro_run, folder)
    dataset = _dataset(folder)
    before = dataset.load().collect()
    manifest = FeatureManifest.from_json_dict(json_manifest(folder))
    frames = [pl.scan_parquet(folder / "groups" / f"{g}.parquet") for g in DATA_GROUPS]
    table = nodes.assemble_features(_keys(before), manifest, params, *frames)
    calls = {"n": 0}
    compute = assembly.cross_sectional.compute

    def failing(*args, **kwargs):  # the z-scores of the third block fail
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return compute(*args, **kwargs)

    monkeypatch.setattr(assembly.cross_sectional, "compute", failing)
    with pytest.raises(Exception, match="disk full"):
        dataset.save(table)
    assert calls["n"] == 3
    assert_frame_equal(dataset.load().collect(), before, check_exact=True)
    assert sorted(p.name for p in (folder / "features").iterdir()) == ["assembled.parquet", "table.json"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".features.")]


def test_a_date_filter_reads_only_the_blocks_of_its_days(kedro_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _dataset(kedro_run).load_table()
    assert len(table.bounds()) >= 4
    reads: list[tuple[str, int, int]] = []
    original = assembly.FramePart.read

    def counted(self, start, stop, columns):
        reads.append((self.name, start, stop))
        return original(self, start, stop, columns)

    monkeypatch.setattr(assembly.FramePart, "read", counted)
    day = table.keys.get_column("Date").unique().sort()[100]
    rows = table.lazy().filter(pl.col("Date") == day).select("Code", "px_ret_5d", "px_ret_5d_csz").collect()
    n_day = table.keys.filter(pl.col("Date") == day).height
    assert rows.height == n_day
    assert sorted({name for name, _, _ in reads}) == ["derived", "px"]  # only the parts holding the columns
    assert all(stop - start == n_day for _, start, stop in reads)  # only that day's rows
    reads.clear()
    by_code = table.lazy().filter(pl.col("Code") == rows["Code"][0]).select("Date", "px_ret_5d").collect()
    assert by_code.height == table.keys.filter(pl.col("Code") == rows["Code"][0]).height
    assert {name for name, _, _ in reads} == {"px"}
    reads.clear()
    assert table.lazy().select(pl.len()).collect().item() == table.height
    assert not reads  # a count reads the keys only
    assert table.lazy().head(5).collect().height == 5
    assert {(start, stop) for _, start, stop in reads} == {table.bounds()[0]}  # the first block only
    reads.clear()
    table.lazy().select("px_ret_1d").collect()  # one column: blocks of the same memory hold more days
    assert len(reads) == len(table.bounds(["px_ret_1d"])) < len(table.bounds())


def test_a_group_frame_in_memory_is_written_to_its_group_file(kedro_run: Path, params: FeatureParams,
                                                              tmp_path: Path) -> None:
    folder = tmp_path / "04_feature"
    shutil.copytree(kedro_run, folder)
    dataset = _dataset(folder)
    before = dataset.load().collect()
    manifest = FeatureManifest.from_json_dict(json_manifest(folder))
    frames = [pl.read_parquet(folder / "groups" / f"{g}.parquet") for g in DATA_GROUPS]  # eager: in memory
    for g in DATA_GROUPS:
        (folder / "groups" / f"{g}.parquet").unlink()
    dataset.save(nodes.assemble_features(_keys(before), manifest, params, *frames))
    assert all((folder / "groups" / f"{g}.parquet").exists() for g, f in zip(DATA_GROUPS, frames) if f.width)
    assert_frame_equal(dataset.load().collect(), before, check_exact=True)


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
