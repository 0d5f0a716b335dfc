"""Benchmark of the feature pipeline at full size: about 4,000 stocks over 10 years.

Parameters are those of the ``gpu`` environment (conf/base + conf/gpu, read by Kedro's
config loader). Builds the canonical tables (the market simulator with ``conf/gpu/parameters_simulator.yml``
when ``atft_kedro.market`` is importable and ``--source simulator``, else the vectorised
generator in ``tests/feature_engineering/sample_tables.py``), then times every node of the
feature pipeline in the order Kedro runs them (panel, graph, targets, each group,
assembly), dropping intermediates as soon as no later node needs them. As in a Kedro run,
each group's frame is saved through the catalog's ``fe_{group}_features`` dataset (a
Parquet file) and the assembly scans them; its ``FeatureTable`` is saved through the
``features`` dataset, which writes the keys, interactions and z-scores (computed and streamed
by blocks of whole days) and refers to the group files for the rest (validated on save). The catalog entries
are the ``gpu`` environment's, with their files under ``--workdir`` (a temporary folder by
default, removed at the end). Prints seconds per stage (a group's includes writing its
file; ``assemble + save`` is the streamed write of the derived columns), the total, and the
peak resident memory of the process while the features are built (sampled every 10 ms).

Run it alone: ``flock /tmp/atft_bench.lock python benchmarks/bench_features.py``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl
import psutil
from kedro.io import DataCatalog

from peak_memory import PeakMemory

from atft_kedro.config import ProjectConfigLoader
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import DATA_GROUPS
from atft_kedro.labels import LabelParams
from atft_kedro.pipelines.feature_engineering import nodes

ROOT = Path(__file__).resolve().parents[1]


def _gpu_loader() -> ProjectConfigLoader:
    return ProjectConfigLoader(conf_source=str(ROOT / "conf"), base_env="base", default_run_env="local", env="gpu")


def gpu_parameters() -> dict:
    """The resolved parameters of the ``gpu`` environment (base + conf/gpu), as Kedro reads them."""
    return _gpu_loader()["parameters"]


def feature_catalog(workdir: Path) -> DataCatalog:
    """The gpu environment's ``fe_{group}_features`` and ``features`` entries, their files under ``workdir``."""
    loader = _gpu_loader()
    data_root = str(loader["globals"]["data_root"])
    entries = {}
    for name in ("fe_{group}_features", "features"):
        entry = dict(loader["catalog"][name])
        for key in ("filepath", "group_filepath"):
            if key in entry:
                entry[key] = str(workdir / Path(entry[key]).relative_to(data_root))
        entries[name] = entry
    return DataCatalog.from_config(entries)


def canonical_tables(source: str, n_stocks: int, n_days: int, seed: int, conf: dict) -> dict:
    """Canonical tables from the simulator (gpu conf) or the sample generator."""
    if source == "simulator":
        from atft_kedro.market.params import SimulatorParams
        from atft_kedro.market.simulator import simulate_market
        from atft_kedro.schemas.tables import TABLES_BY_RAW_NAME

        raw = simulate_market(SimulatorParams(**conf["simulator"]), conf["horizons"], LabelParams(**conf["labels"]))
        return {TABLES_BY_RAW_NAME[k].canonical_name: TABLES_BY_RAW_NAME[k].to_canonical(v)
                for k, v in raw.items() if k in TABLES_BY_RAW_NAME}
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "feature_engineering"))  # a test helper
    from sample_tables import make_canonical_tables

    return make_canonical_tables(n_stocks, n_days, seed)


def run(tables: dict, params: FeatureParams, horizons: list[int], labels: LabelParams,
        catalog: DataCatalog) -> dict[str, float]:
    """Run the pipeline's nodes in order, saving through ``catalog``; return seconds per stage."""
    timings: dict[str, float] = {}

    def timed(name: str, fn):
        started, cpu = time.perf_counter(), time.process_time()
        out = fn()
        timings[name] = time.perf_counter() - started
        print(f"  {name:<16s} {timings[name]:7.1f} s wall {time.process_time() - cpu:7.1f} s cpu   "
              f"rss {psutil.Process().memory_info().rss / 2**30:5.1f} GiB", flush=True)
        return out

    manifest = timed("manifest", lambda: nodes.build_manifest(params))
    panel = timed("stock_panel", lambda: nodes.build_stock_panel(
        tables.pop("daily_quotes"), tables.pop("listed_info"), tables["trading_calendar"]))
    gc.collect()
    graph = timed("stock_graph", lambda: nodes.build_stock_graph(panel, params))
    keys = timed("keys", lambda: nodes.select_feature_keys(panel))
    targets = timed("targets", lambda: nodes.build_targets(panel, horizons, labels))
    del targets
    # each table is dropped after the last node that reads it, as Kedro's runner releases datasets
    tables["stock_graph"] = graph
    groups = list(DATA_GROUPS.values())
    last_reader = {source: i for i, group in enumerate(groups) for source in group.sources}

    saving: dict[str, float] = {}

    def group_step(group, sources) -> None:
        frame = nodes.group_node(group)(panel, *sources, params)
        started = time.perf_counter()
        catalog.save(group.dataset, frame)
        saving[group.name] = time.perf_counter() - started

    for i, group in enumerate(groups):
        sources = [tables.pop(s) if last_reader[s] == i else tables[s] for s in group.sources]
        timed(group.name, lambda: group_step(group, sources))  # noqa: B023
        del sources
    print(f"  (of the groups' time, writing their files: {sum(saving.values()):.1f} s)")
    del panel  # released before the assembly, as Kedro does
    gc.collect()
    frames = [catalog.load(group.dataset) for group in groups]
    timed("assemble + save", lambda: catalog.save(
        "features", nodes.assemble_features(keys, manifest, params, *frames)))
    features = catalog.load("features")
    n_rows = features.select(pl.len()).collect().item()
    n_features = len(features.collect_schema()) - 2
    folder = Path(catalog["features"]._filepath)  # noqa: SLF001 - for the sizes only
    groups = sum(path.stat().st_size for path in (folder.parent / "groups").glob("*.parquet"))
    own = sum(path.stat().st_size for path in folder.iterdir())
    print(f"  features: {n_rows:,} rows x {n_features} features, "
          f"{n_rows * n_features * 4 / 2**30:.2f} GiB as float32 in memory; on disk {groups / 2**30:.2f} GiB of "
          f"group files + {own / 2**30:.2f} GiB in {folder.name}/ (keys, interactions, z-scores); "
          f"graph: {graph.height:,} edges")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["simulator", "synthetic"], default="simulator")
    parser.add_argument("--stocks", type=int, default=4000, help="synthetic source only")
    parser.add_argument("--days", type=int, default=2450, help="synthetic source only (trading days)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where the Parquet files go (default: a temp dir)")
    args = parser.parse_args()
    conf = gpu_parameters()
    params = FeatureParams(**conf["feature_engineering"])
    horizons = list(conf["horizons"])

    started = time.perf_counter()
    tables = canonical_tables(args.source, args.stocks, args.days, args.seed, conf)
    quotes = tables["daily_quotes"]
    print(f"canonical tables ({args.source}): {quotes.height:,} quote rows, "
          f"{quotes.get_column('Code').n_unique():,} codes, {quotes.get_column('Date').n_unique():,} days "
          f"in {time.perf_counter() - started:.1f} s", flush=True)
    del quotes
    gc.collect()
    rss_before = psutil.Process().memory_info().rss
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_features_"))
    try:
        with PeakMemory() as memory:
            started, cpu = time.perf_counter(), time.process_time()
            timings = run(tables, params, horizons, LabelParams(**conf["labels"]), feature_catalog(workdir))
            total, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"feature build + graph: {total:.1f} s wall, {cpu:.1f} s cpu (graph {timings['stock_graph']:.1f} s); "
          f"load average {psutil.getloadavg()[0]:.1f} on {psutil.cpu_count()} cores")
    print(f"peak RSS during the build: {memory.rss / 2**30:.2f} GiB "
          f"(RSS before: {rss_before / 2**30:.2f} GiB, tables included)")


if __name__ == "__main__":
    main()
