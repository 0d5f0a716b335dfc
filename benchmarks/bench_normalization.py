"""Benchmark the normalization pipeline's three nodes on a synthetic full-universe features table.

Default size: 4,000 stocks x 2,450 trading days (~10 years) x 280 float32 features,
generated here. Prints seconds and peak memory per node and the feature table's size.
The model input is saved through ``ModelInputDataset`` inside the measured span: the
``build_model_input`` node returns ``ModelInputBlocks`` and the dataset computes and writes
the dense features a block of days at a time, so the save is where the work is.

    flock /tmp/atft_bench.lock python benchmarks/bench_normalization.py [--source parquet|memory]

``--source parquet`` (the default: what the ``features`` catalog entry gives) writes the
table to a Parquet file first and hands the nodes a ``pl.scan_parquet`` LazyFrame: the
nodes read only the columns and dates each step needs and the table is never whole in
memory. ``--source table`` writes it as the feature pipeline does (group files referred to
by the ``features`` dataset, ``FeatureTableDataset``) and hands the nodes the LazyFrame that
dataset loads. ``--source memory`` hands them an eager ``pl.DataFrame`` (the table sits whole
in memory). ``--save`` is accepted for old command lines; the model input is always saved.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from peak_memory import PeakMemory, status_bytes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from atft_kedro.datasets import ModelInputDataset  # noqa: E402
from atft_kedro.normalization.params import NormalizationParams  # noqa: E402
from atft_kedro.pipelines.normalization.nodes import (  # noqa: E402
    build_model_input,
    fit_normalizer,
    make_splits,
)
from atft_kedro.schemas.manifest import FeatureManifest, FeatureSpec  # noqa: E402

GROUPS = ("px", "tech", "mkt", "beta", "sec", "flow", "mrg", "ss", "stmt", "grf")
HORIZONS = [1, 5, 10, 20]
GIB = 2**30


def synthetic_manifest(n_features: int) -> FeatureManifest:
    specs = []
    for i in range(n_features):
        group = GROUPS[i % len(GROUPS)]
        name = f"{group}_f{i:03d}" + ("_valid" if i % 20 == 19 else "")
        specs.append(FeatureSpec(name=name, group=group, source="synthetic", lag_days=0, description=name))
    return FeatureManifest(features=tuple(specs))


def synthetic_calendar(n_days: int) -> tuple[pl.DataFrame, np.ndarray]:
    """A calendar from 2015-01-05 with weekends and every 20th weekday closed, and its first n_days trading days."""
    start = dt.date(2015, 1, 5)
    span = int(n_days * 1.6) + 30
    days = np.arange(np.datetime64(start), np.datetime64(start) + span)
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    trading = weekday < 5
    trading &= ~((np.cumsum(trading) % 20 == 0) & trading)
    cal = pl.DataFrame({"Date": days, "HolidayDivision": np.where(trading, "1", "0")}).with_columns(
        pl.col("Date").cast(pl.Date)
    )
    return cal, days[trading][:n_days]


def feature_chunk(
    rng: np.random.Generator, dates: np.ndarray, codes: pl.Series, manifest: FeatureManifest
) -> pl.DataFrame:
    """Rows (date x stock) for ``dates``; fat-tailed values, ~3% nulls in every 7th column, 0/1 flags."""
    n_stocks = codes.len()
    rows = dates.size * n_stocks
    columns = [
        pl.Series("Date", np.repeat(dates, n_stocks)).cast(pl.Date),
        codes.gather(np.tile(np.arange(n_stocks), dates.size)),
    ]
    for i, name in enumerate(manifest.names):
        if name.endswith("_valid"):
            values = (rng.random(rows, dtype=np.float32) > 0.1).astype(np.float32)
        else:
            values = rng.standard_normal(rows, dtype=np.float32) * np.float32(1 + i % 5) + np.float32(i % 3)
        if i % 7 == 3:
            values[rng.random(rows, dtype=np.float32) < 0.03] = np.nan
        columns.append(pl.Series(name, values, nan_to_null=i % 7 == 3))
    return pl.DataFrame(columns)


def synthetic_targets(rng: np.random.Generator, dates: np.ndarray, codes: pl.Series) -> pl.DataFrame:
    n_stocks = codes.len()
    rows = dates.size * n_stocks
    frame = pl.DataFrame(
        [
            pl.Series("Date", np.repeat(dates, n_stocks)).cast(pl.Date),
            codes.gather(np.tile(np.arange(n_stocks), dates.size)),
            *[pl.Series(f"target_ret_{h}d", rng.standard_normal(rows) * 0.02 * np.sqrt(h)) for h in HORIZONS],
        ]
    )
    return frame.with_columns(
        [
            pl.when(pl.col("Date") >= dates[-h].astype(dt.date))
            .then(None)
            .otherwise(pl.col(f"target_ret_{h}d"))
            .alias(f"target_ret_{h}d")
            for h in HORIZONS
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=4000)
    parser.add_argument("--days", type=int, default=2450)
    parser.add_argument("--features", type=int, default=280)
    parser.add_argument("--source", choices=("memory", "parquet", "table"), default="parquet")
    parser.add_argument("--cs-groups", default="sec,flow", help="comma-separated cross-sectional groups")
    parser.add_argument("--workdir", default=None, help="where the parquet file goes (default: a temp dir)")
    parser.add_argument("--save", action="store_true", help="no-op: the model input is always saved (timed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    conf = yaml.safe_load((ROOT / "conf/base/parameters_normalization.yml").read_text())["normalization"]
    conf["cross_section"]["groups"] = [g for g in args.cs_groups.split(",") if g]
    params = NormalizationParams.model_validate(conf)
    manifest = synthetic_manifest(args.features)
    cal, dates = synthetic_calendar(args.days)
    codes = pl.Series("Code", [f"{1000 + 2 * i:04d}0" for i in range(args.stocks)], dtype=pl.String)
    rng = np.random.default_rng(args.seed)
    rows = args.stocks * args.days

    estimate = rows * (args.features * 4 + 20)
    try:
        import psutil

        available = psutil.virtual_memory().available
    except ImportError:  # pragma: no cover
        available = None
    need = (1.3 if args.source == "memory" else 0.35) * estimate
    if available is not None and need > available:
        sys.exit(
            f"refusing: --source {args.source} needs about {need / GIB:.1f} GiB and "
            f"{available / GIB:.1f} GiB are available; use --source parquet or fewer --stocks"
        )

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_normalization_"))
    try:
        run(args, params, manifest, cal, dates, codes, rng, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def feature_table(
    rng: np.random.Generator, dates: np.ndarray, codes: pl.Series, manifest: FeatureManifest, chunk_days: int,
    workdir: Path, n_groups: int = 10,
) -> tuple[pl.LazyFrame, int, int]:
    """The table as the feature pipeline leaves it: ``n_groups`` group files (lz4, row groups of
    16,384 rows, as ``fe_{group}_features``) saved and loaded through ``FeatureTableDataset``.

    Returns the loaded LazyFrame, the table's bytes in memory and on disk.
    """
    import pyarrow.parquet as pq

    from atft_kedro.datasets.feature_table import FeatureTableDataset
    from atft_kedro.features.assembly import FeatureTable, FramePart, rows_per_block

    names = list(manifest.names)
    groups = {f"g{k}": names[k::n_groups] for k in range(n_groups)}
    pattern = str(workdir / "groups" / "{group}.parquet")
    (workdir / "groups").mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    keys, table_bytes = [], 0
    for lo in range(0, dates.size, chunk_days):
        chunk = feature_chunk(rng, dates[lo : lo + chunk_days], codes, manifest).sort("Date", "Code")
        table_bytes += chunk.estimated_size()
        keys.append(chunk.select("Date", "Code"))
        for group, columns in groups.items():
            arrow = chunk.select(columns).to_arrow()
            if group not in writers:
                writers[group] = pq.ParquetWriter(pattern.format(group=group), arrow.schema, compression="lz4",
                                                  use_dictionary=False)
            writers[group].write_table(arrow, row_group_size=16384)
        del chunk
    for writer in writers.values():
        writer.close()
    parts = tuple(FramePart(g, pl.scan_parquet(pattern.format(group=g))) for g in groups)
    table = FeatureTable(keys=pl.concat(keys), parts=parts, names=tuple(names),
                         block_rows=rows_per_block(len(names), 256))
    dataset = FeatureTableDataset(filepath=str(workdir / "features"), group_filepath=pattern,
                                  save_args={"compression": "lz4", "row_group_size": 65536})
    dataset.save(table)
    file_bytes = sum(p.stat().st_size for p in workdir.rglob("*.parquet"))
    return dataset.load(), table_bytes, file_bytes


def run(
    args: argparse.Namespace,
    params: NormalizationParams,
    manifest: FeatureManifest,
    cal: pl.DataFrame,
    dates: np.ndarray,
    codes: pl.Series,
    rng: np.random.Generator,
    workdir: Path,
) -> None:
    """Generate the table (in memory or as Parquet), run the three nodes, print the figures."""
    rows = args.stocks * args.days
    dense_bytes = rows * args.features * np.dtype(params.dtype).itemsize
    print(
        f"bench_normalization: {args.stocks} stocks x {args.days} days x {args.features} features "
        f"({rows:,} rows), source={args.source}, dtype={params.dtype}, "
        f"cross_section.groups={list(params.cross_section.groups)}, block_mib={params.block_mib}, "
        f"cpus={os.cpu_count()}, polars threads={pl.thread_pool_size()}",
        flush=True,
    )
    started = time.perf_counter()
    chunk_days = max(1, 80_000 // args.stocks)  # Parquet row groups of ~80k rows (~90 MB)
    table_bytes = 0
    if args.source == "memory":
        features = feature_chunk(rng, dates, codes, manifest)
        table_bytes = features.estimated_size()
        file_bytes = 0
    elif args.source == "parquet":
        import pyarrow.parquet as pq

        path = workdir / "features.parquet"
        writer = None
        for lo in range(0, dates.size, chunk_days):
            chunk = feature_chunk(rng, dates[lo : lo + chunk_days], codes, manifest)
            table_bytes += chunk.estimated_size()
            arrow = chunk.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema, compression="lz4", use_dictionary=False)
            writer.write_table(arrow, row_group_size=chunk.height)
            del chunk, arrow
        writer.close()
        file_bytes = path.stat().st_size
        features = pl.scan_parquet(path)
    else:
        features, table_bytes, file_bytes = feature_table(rng, dates, codes, manifest, chunk_days, workdir)
    targets = synthetic_targets(rng, dates, codes)
    print(
        f"generated in {time.perf_counter() - started:.1f} s: feature table {table_bytes / GIB:.2f} GiB "
        f"in memory" + (f", {file_bytes / GIB:.2f} GiB as Parquet" if file_bytes else "")
        + f"; targets {targets.estimated_size() / GIB:.2f} GiB; dense features {dense_bytes / GIB:.2f} GiB",
        flush=True,
    )

    base_rss = status_bytes("VmRSS")
    base_anon = status_bytes("RssAnon")
    timings = {}
    dataset = ModelInputDataset(filepath=str(workdir / "model_input"))
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        splits = make_splits(cal, features, params, HORIZONS)
        timings["make_splits"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        normalizer = fit_normalizer(features, manifest, splits, params)
        timings["fit_normalizer"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model_input = build_model_input(features, targets, manifest, normalizer, params, HORIZONS)
        timings["build_model_input"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        dataset.save(model_input)  # the dense features are computed here, block by block
        timings["save model_input"] = time.perf_counter() - t0
        del model_input
    total = sum(timings.values())
    for name, seconds in timings.items():
        print(f"  {name:18s} {seconds:8.1f} s")
    print(f"  {'total':18s} {total:8.1f} s  (three nodes and the save of model_input)")
    print(
        f"peak memory during the nodes and the save: RSS {peak.rss / GIB:.2f} GiB (anonymous "
        f"{peak.anon / GIB:.2f} GiB); before them RSS {base_rss / GIB:.2f} GiB (anonymous {base_anon / GIB:.2f} "
        f"GiB); process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )
    t0 = time.perf_counter()
    loaded = dataset.load()
    t_load = time.perf_counter() - t0
    print(
        f"peak RSS / feature table = {peak.rss / table_bytes:.2f}; "
        f"model_input features {loaded.features.nbytes / GIB:.2f} GiB on disk (mmap load {t_load * 1000:.0f} ms), "
        f"{normalizer.n_train_rows:,} training rows fitted"
    )
    assert np.isfinite(loaded.features[:: max(1, loaded.n_days // 50)]).all()
    del loaded

if __name__ == "__main__":
    main()
